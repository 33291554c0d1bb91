"""The ``racesim`` command line: its subcommands and their options (parsed, not run)."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from racesim.cli.common import Parser

__all__ = ["build_parser"]


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="racesim",
        description="Run and explore interleavings of PostgreSQL callers, checking the"
        " system's invariants after every step.",
        epilog="exit status: 0 matched / nothing found, 1 violation or mismatch, 2 bad input"
        " or no PostgreSQL, 3 a replay or a finding did not reproduce (flaky), 4 harness lost its monitor",
    )
    parser.add_argument("--version", action="version", version=f"racesim {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

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

    def split_option(p: argparse.ArgumentParser, default: str) -> None:
        p.add_argument(
            "--split-commits",
            action=argparse.BooleanOptionalAction,
            help="run a program's autocommit INSERT, UPDATE, DELETE or MERGE as two steps,"
            " NAME and NAME/commit, so another session may run between its work and its"
            f" commit; --no-split-commits: one step each (default: {default})",
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
    split_option(run, "split, unless a file says split_commits = false")
    pg_options(run)

    explore = sub.add_parser(
        "explore",
        help="search schedules for violations and save them",
        description="Search schedules of a system's runs for violations and save each as a"
        " scenario file. The other form, racesim explore FILE.spec [--invariants FILE]"
        " [--strategy exhaustive|hypothesis|pct] [--seed N] [--max-examples N]"
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
        " (default: one move per schedule, to each window's exact boundary right after"
        " a step that started it, and each fault)",
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
    split_option(explore, "split, for every strategy")
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
    split_option(replay, "as the file says; split when it says nothing")
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
