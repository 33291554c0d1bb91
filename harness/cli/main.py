"""The ``racesim`` command: a thin face over the runner, explorer and benchmarks."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from racesim.cli.common import system_of
from racesim.cli.common import writable_folder as writable_folder
from racesim.cli.parser import build_parser as build_parser
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
            from racesim.cli.run import cmd_run

            return cmd_run(args, Reporter(as_json=args.json))
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
        from racesim.cli.bench import cmd_bench

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


if __name__ == "__main__":
    sys.exit(main())
