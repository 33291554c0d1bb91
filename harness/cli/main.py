"""The ``racesim`` command: a thin face over the runner, explorer and benchmarks."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from racesim.cli.common import Parser as _Parser
from racesim.cli.common import named_system, system_of
from racesim.cli.common import writable_folder as writable_folder
from racesim.errors import (
    EXIT_FOUND,
    EXIT_HARNESS,
    EXIT_INPUT,
    EXIT_OK,
    HarnessError,
    InputError,
    RacesimError,
)

if TYPE_CHECKING:
    from racesim.report.text import Reporter

EXIT_INTERRUPTED = 130
"""Ctrl-C (128 + SIGINT), as a shell reports a command the signal ended."""
EXIT_PIPE = 141
"""The reader of the output went away (128 + SIGPIPE), e.g. ``racesim ... | head -1``."""
EXIT_TERMINATED = 143
"""SIGTERM (128 + 15): racesim stops, cleans up and says so in one line."""


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="racesim",
        description="Run and explore interleavings of PostgreSQL callers, checking after"
        " every step that no caller clears another caller's marker.",
        epilog="exit status: 0 matched / nothing found, 1 violation or mismatch, 2 bad input"
        " or no PostgreSQL, 3 a replay or a finding did not reproduce (flaky), 4 harness lost its monitor",
    )
    parser.add_argument("--version", action="version", version=f"racesim {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def pg_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--dsn", help="use this PostgreSQL server (or set RACESIM_DSN)")
        p.add_argument(
            "--pg",
            default="auto",
            choices=["auto", "dsn", "local", "docker"],
            help="where PostgreSQL comes from (default: auto)",
        )
        p.add_argument(
            "--pg-version",
            metavar="N",
            help="the PostgreSQL major version of racesim's own cluster, e.g. 15 or 18"
            " (or set RACESIM_PG_VERSION; default: the first server found)",
        )

    def system_option(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--system",
            help="the system under test: an installed system's name (e.g. jobqueue) or"
            " package.module:attribute (default: the reference system, or the scenario's"
            " system key)",
        )

    run = sub.add_parser("run", help="run scenario files (or folders of them) or .spec files")
    run.add_argument("paths", nargs="+", metavar="PATH")
    run.add_argument("--store", help="run only this store (a variant of the system)")
    system_option(run)
    run.add_argument("--json", action="store_true", help="JSON lines instead of timelines")
    run.add_argument(
        "--stop-at-first", action="store_true", help="stop a run at its first violation"
    )
    run.add_argument("--expected", metavar="FILE.out", help="(.spec) compare with this output")
    run.add_argument(
        "--format", choices=["isolation", "timeline"], help="(.spec) output (default isolation)"
    )
    run.add_argument("--step-timeout", metavar="SECONDS", help="(.spec) bound on one step")
    run.add_argument(
        "--in-database",
        action="store_true",
        help="(.spec, with --dsn) run in the database the DSN names, as isolationtester"
        " does, instead of a fresh one racesim makes and drops",
    )
    run.add_argument("--html", metavar="FILE", help="also write the runs as an HTML swimlane page")
    run.add_argument(
        "--export-spec",
        metavar="FILE.spec",
        help="also write the run (one scenario, one store on the database) as a .spec"
        " that isolationtester replays",
    )
    pg_options(run)

    explore = sub.add_parser(
        "explore",
        help="search schedules for violations and save them",
        description="Search schedules of a system's runs for violations and save each as a"
        " scenario file. The other form, racesim explore FILE.spec [--invariants FILE]"
        " [--strategy exhaustive|random|hypothesis|pct] [--seed N] [--max-examples N]"
        " [--out DIR] [--step-timeout SECONDS], runs interleavings of a PostgreSQL"
        " isolation spec beyond its permutations with SQL invariants checked"
        " (racesim explore FILE.spec --help).",
    )
    explore.format_help = _with_configurations(explore.format_help)  # type: ignore[method-assign]
    explore.add_argument("--store", required=True, help="store (variant of the system) to explore")
    system_option(explore)
    explore.add_argument(
        "--seed", type=int, help="seed of the hypothesis and pct strategies (default 0)"
    )
    explore.add_argument(
        "--invariants", metavar="FILE", help="(racesim explore FILE.spec) SQL invariants file"
    )
    limit = explore.add_mutually_exclusive_group()
    limit.add_argument("--budget", help="time budget, e.g. 30s or 2m")
    limit.add_argument("--max-examples", type=int, help="schedules to try at most")
    explore.add_argument(
        "--strategy",
        default="portfolio",
        choices=["portfolio", "hypothesis", "exhaustive", "pct"],
    )
    explore.add_argument(
        "--clock-moves",
        type=int,
        metavar="K",
        help="(exhaustive) try up to K clock moves per schedule at the system's time"
        " windows, and each fault a run may have added; 0: the interleavings alone"
        " (default: one move per schedule, to each window's exact boundary, and each fault)",
    )
    explore.add_argument(
        "--config",
        help="the runs to explore, for every strategy: one of the system's configurations"
        " (each installed system's are listed below)",
    )
    explore.add_argument(
        "--out",
        help="folder for counterexample scenario files (default .cache/racesim/counterexamples)",
    )
    explore.add_argument(
        "--profile",
        choices=["dev", "ci", "nightly"],
        help="Hypothesis settings profile (or set HYPOTHESIS_PROFILE)",
    )
    explore.add_argument("--shard", default="1/1", help="do part K of N (exhaustive)")
    explore.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="spread the search over N local worker processes, each with its own PostgreSQL",
    )
    explore.add_argument(
        "--tx",
        action="append",
        metavar="SPEC",
        help="also a worker on this execnet gateway (popen, socket=HOST:PORT, ssh=HOST;"
        " repeatable, K*SPEC for K of them)",
    )
    explore.add_argument(
        "--example-db",
        metavar="redis://HOST:PORT/N",
        help="(hypothesis) share Hypothesis's example database through this Redis server",
    )
    explore.add_argument(
        "--html",
        action="store_true",
        help="write each counterexample's run as an HTML page next to its scenario file",
    )
    explore.add_argument(
        "--export-spec",
        action="store_true",
        help="write each counterexample's run as a .spec next to its scenario file",
    )
    pg_options(explore)

    replay = sub.add_parser("replay", help="re-run a saved counterexample")
    replay.add_argument("file", metavar="FILE")
    replay.add_argument(
        "--store",
        help="replay on this store instead of the ones the file expects the violation on"
        " (exit 0 when it does not occur there)",
    )
    replay.add_argument("--html", metavar="FILE", help="also write the replay as an HTML page")
    replay.add_argument(
        "--export-spec",
        metavar="FILE.spec",
        help="also write the replay as a .spec that isolationtester replays",
    )
    system_option(replay)
    pg_options(replay)

    soak = sub.add_parser("soak", help="explore for minutes and watch memory, backends, speed")
    soak.add_argument("--minutes", type=float, default=10.0, help="how long (default 10)")
    soak.add_argument(
        "--store", help="store to soak (default: the first on a database that follows the model)"
    )
    soak.add_argument("--seed", type=int, default=0)
    soak.add_argument("--window", type=float, default=60.0, help="seconds per report line")
    system_option(soak)
    pg_options(soak)

    bench = sub.add_parser("bench", help="print performance figures against their targets")
    bench.add_argument(
        "what",
        choices=["startup", "engine", "explore", "parallel", "spec", "workers", "code", "proxy"],
    )
    bench.add_argument("--seeds", type=int, help="seeds for bench explore (default 5)")
    bench.add_argument(
        "--repeat",
        type=int,
        help="rounds of startup, engine, parallel, spec (default 5), workers (default 1)",
    )
    bench.add_argument("--specs", metavar="DIR", help="folder of .spec files for bench spec")
    bench.add_argument(
        "--per-process",
        action="store_true",
        help="(bench spec) each spec as a program of its own: racesim run FILE.spec against"
        " createdb + isolationtester + dropdb",
    )
    pg_options(bench)

    sub.add_parser("clean", help="remove racesim's cache and dead racesims' run directories")
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("racesim")
    except PackageNotFoundError:
        return "unknown"


def _with_configurations(base: Callable[[], str]) -> Callable[[], str]:
    """``explore --help`` ends with every installed system's configurations (read from
    the systems only when help is asked for)."""

    def format_help() -> str:
        from racesim.cli.explore import configurations

        return f"{base()}\n{configurations()}\n"

    return format_help


def main(argv: Sequence[str] | None = None) -> int:
    """The command; imports happen inside, so a Ctrl-C or a closed pipe at any point
    ends it with one line (or silently) and a status, never a traceback."""
    try:
        from racesim.provision.cleanup import install_signal_handlers
        from racesim.report.text import Reporter

        install_signal_handlers()
        return _dispatch(argv, Reporter())
    except KeyboardInterrupt:
        _say("racesim: interrupted")
        return EXIT_INTERRUPTED
    except SystemExit as exc:  # SIGTERM (see install_signal_handlers)
        if exc.code != EXIT_TERMINATED:
            raise
        _say("racesim: terminated")
        return EXIT_TERMINATED
    except BrokenPipeError:
        _mute_stdout()
        return EXIT_PIPE


def _say(text: str) -> None:
    with contextlib.suppress(OSError, ValueError):  # else no one is left to read it
        print(text, file=sys.stderr, flush=True)


def _mute_stdout() -> None:
    """Point standard output at /dev/null so the interpreter's last flush stays quiet."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())
        os.close(null)
    except (OSError, ValueError):
        pass


def _dispatch(argv: Sequence[str] | None, reporter: Reporter) -> int:
    from racesim.provision.provide import mask_dsn
    from racesim.report.text import Reporter

    try:
        words = list(sys.argv[1:] if argv is None else argv)
        if "--in-database" in words and words[:1] != ["run"]:
            raise InputError(
                f"racesim {words[0]}: --in-database applies to racesim run FILE.spec --dsn"
                " (one run of a spec in the database the DSN names); fix: drop --in-database"
            )
        if words[:1] == ["explore"] and _names_spec_file(words[1:]):
            from racesim.cli.spec import cmd_explore_spec

            return cmd_explore_spec(words[1:], reporter)
        args = build_parser().parse_args(argv)
        from racesim.cli.options import refuse_ignored

        refuse_ignored(args)
        if args.command == "run":
            reporter = Reporter(as_json=args.json)
            return cmd_run(args, reporter)
        if args.command == "explore" and args.invariants is not None:
            raise InputError("racesim explore: --invariants applies to .spec files; fix: drop it")
        if args.command == "explore":
            from racesim.cli.explore import cmd_explore
            from racesim.explore.run import DEFAULT_OUT

            made = writable_folder(
                Path(args.out) if args.out else DEFAULT_OUT, "--out", given=bool(args.out)
            )
            try:
                return cmd_explore(args, reporter)
            finally:
                for folder in made:  # leave no empty folder of ours behind
                    with contextlib.suppress(OSError):
                        folder.rmdir()
        if args.command == "replay":
            from racesim.cli.explore import cmd_replay

            return cmd_replay(args, reporter)
        if args.command == "soak":
            from racesim.cli import soak

            steady = soak.run(
                reporter,
                system_of(args),
                minutes=args.minutes,
                store=args.store,
                seed=args.seed,
                window=args.window,
                pg=args.pg,
                dsn=args.dsn,
            )
            return EXIT_OK if steady else EXIT_FOUND
        if args.command == "clean":
            from racesim.cli.clean import cmd_clean

            return cmd_clean(args, reporter)
        return cmd_bench(args, reporter)
    except InputError as exc:
        for problem in exc.problems:
            reporter.problem(mask_dsn(problem))
        return EXIT_INPUT
    except HarnessError as exc:
        reporter.problem(f"racesim: {mask_dsn(str(exc))}")
        return EXIT_HARNESS
    except RacesimError as exc:  # e.g. no PostgreSQL: a line per place tried, each escaped
        for n, line in enumerate(mask_dsn(str(exc)).split("\n")):
            reporter.problem(f"racesim: {line}" if n == 0 else line)
        return EXIT_INPUT
    except Exception as exc:
        lost = server_lost(exc)
        if lost is None:
            raise
        reporter.problem(f"racesim: {mask_dsn(lost)}")
        return EXIT_HARNESS


def _names_spec_file(words: list[str]) -> bool:
    """True when ``explore``'s own arguments name a ``.spec`` file (not a value of
    ``--system``, where ``spec:FILE.spec`` is a spec's system)."""
    after_system = False
    for w in words:
        if w.endswith(".spec") and not after_system and not w.startswith(("spec:", "--")):
            return True
        after_system = w == "--system"
    return False


def server_lost(exc: BaseException) -> str | None:
    """One line when ``exc`` (or what it was raised while handling) is PostgreSQL going
    away under racesim (its server stopped or killed mid-run); None for anything else."""
    import psycopg

    from racesim.engine.actors import describe

    seen: BaseException | None = exc
    lost: str | None = None
    while seen is not None:
        if isinstance(seen, HarnessError):
            return str(seen).splitlines()[0]
        if lost is None and isinstance(seen, psycopg.OperationalError):
            lost = (
                f"lost the connection to PostgreSQL ({describe(seen)}): the server stopped"
                " or was killed; the run stops here and nothing after that was checked"
            )
        seen = seen.__context__
    return lost


def cmd_run(args: argparse.Namespace, reporter: Reporter) -> int:
    from racesim.cli.spec import cmd_run_spec, is_spec

    if any(is_spec(p) for p in args.paths):
        return cmd_run_spec(args, reporter)
    for flag, given in (("--expected", args.expected), ("--format", args.format)):
        if given is not None:
            raise InputError(f"racesim run: {flag} applies to .spec files; fix: drop {flag}")
    if args.step_timeout is not None:
        raise InputError("racesim run: --step-timeout applies to .spec files; fix: drop it")
    if args.in_database:
        raise InputError("racesim run: --in-database applies to .spec files; fix: drop it")
    from contextlib import nullcontext

    from racesim.cli.export import export_spec, exportable
    from racesim.engine.loop import Options
    from racesim.formats.names import escaped
    from racesim.formats.writer import check_target
    from racesim.report import html
    from racesim.runner import load_all, prepared, run_one

    page = html.check_target(args.html) if args.html is not None else None
    spec_out = check_target(args.export_spec, "--export-spec") if args.export_spec else None
    system = named_system(args)
    if args.store is not None and system is not None:
        system.variant(args.store)  # an unknown store is refused before anything runs
    scenarios = load_all(args.paths, system)
    systems = {id(s.system): s.system for s in scenarios}
    if args.store is not None and all(args.store not in x.variant_names for x in systems.values()):
        names = sorted({n for x in systems.values() for n in x.variant_names})
        raise InputError(
            f"--store: unknown store {args.store[:40]!r} for the scenarios' systems; choose"
            f" from {', '.join(names)}"
        )
    jobs = [(s, st) for s in scenarios for st in s.stores if not args.store or st == args.store]
    if not jobs:
        raise InputError(f"no scenario names store {args.store}; drop --store or add it to stores")
    if spec_out is not None:
        exportable(jobs)
    views = []
    options = Options(stop_at_first=args.stop_at_first)
    need_pg = any(s.system.variant(st).database for s, st in jobs)
    if not need_pg and (args.dsn is not None or args.pg not in (None, "auto")):
        given = "--dsn" if args.dsn is not None else f"--pg {args.pg}"
        raise InputError(
            f"{given}: every run here is in memory ({', '.join(sorted({st for _, st in jobs}))})"
            f" and needs no PostgreSQL; drop {given} or choose a store that uses the database"
        )
    failed = skipped = 0
    with prepared(args.pg, args.dsn, say=reporter.problem) if need_pg else nullcontext() as made:
        for scenario, store in jobs:
            dbs = made.for_system(scenario.system) if made is not None else None
            result = run_one(scenario, store, dbs, options)
            views.append(reporter.run(scenario.name, scenario.path, result.outcome, result.verdict))
            failed += not result.verdict.matches
            skipped += result.verdict.skipped
            if spec_out is not None and dbs is not None and not result.verdict.skipped:
                reporter.line(f"wrote {escaped(str(export_spec(result, dbs, spec_out)))}")
    if page is not None:
        html.write(views, page)
    reporter.line(
        f"{len(jobs) - failed - skipped} matched, {failed} did not, {skipped} skipped"
        f" ({len(jobs)} runs)"
    )
    return EXIT_FOUND if failed else EXIT_OK


def cmd_bench(args: argparse.Namespace, reporter: Reporter) -> int:
    from racesim.cli.options import BENCH_REPEAT

    if args.specs is not None and args.what != "spec":
        raise InputError("racesim bench: --specs applies to bench spec; fix: drop it")
    repeat = BENCH_REPEAT if args.repeat is None else args.repeat
    if args.what == "startup":
        from racesim.bench import startup as bench_startup

        for line in bench_startup.run(repeat=repeat):
            reporter.line(line)
        return EXIT_OK
    if args.what == "parallel":
        from racesim.bench import parallel as bench_parallel

        for line in bench_parallel.run(repeat=repeat):
            reporter.line(line)
        return EXIT_OK
    if args.what == "code":
        from racesim.bench import code as bench_code

        for line in bench_code.run(args.pg, args.dsn, repeat=repeat):
            reporter.line(line)
        return EXIT_OK
    if args.what == "workers":
        from racesim.bench import workers as bench_workers

        for line in bench_workers.run(args.pg, args.dsn, repeat=args.repeat or 1):
            reporter.line(line)
        return EXIT_OK
    if args.what == "proxy":
        from racesim.bench import proxy as bench_proxy

        for line in bench_proxy.run(args.pg, args.dsn, repeat=repeat):
            reporter.line(line)
        return EXIT_OK
    if args.what == "spec":
        from racesim.bench import spec as bench_spec

        for line in bench_spec.run(
            args.pg, args.dsn, repeat=repeat, folder=args.specs, per_process=args.per_process
        ):
            reporter.line(line)
        return EXIT_OK
    if args.what == "explore":
        from racesim.bench import explore as bench_explore

        for line in bench_explore.run(
            args.pg, args.dsn, seeds=5 if args.seeds is None else args.seeds
        ):
            reporter.line(line)
        return EXIT_OK
    from racesim.bench import engine as bench_engine

    for line in bench_engine.run(args.pg, args.dsn, repeat=repeat):
        reporter.line(line)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
