"""Options that would change nothing are refused (one line, exit 2), never ignored.

``refuse_ignored`` runs on the parsed command line before anything starts; each
rule names the option, why it would have no effect here, and the fix.
"""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING

from racesim import config
from racesim.errors import InputError
from racesim.formats import commits

if TYPE_CHECKING:
    from racesim.formats.scenario import Scenario

__all__ = ["BENCH_REPEAT", "pin_version", "refuse_ignored", "split_agrees"]

BENCH_REPEAT = 5
"""Rounds of ``bench startup|engine|parallel`` when ``--repeat`` is not given."""
_ENGINE_ROUNDS = 3
"""``bench engine`` takes medians over at least this many rounds."""


def refuse_ignored(args: argparse.Namespace) -> None:
    """InputError when an option of ``args`` would be silently ignored."""
    pg, dsn = getattr(args, "pg", None), getattr(args, "dsn", None)
    if dsn is not None and pg in ("local", "docker"):
        raise InputError(
            f"--dsn: --pg {pg} starts a server of racesim's own and would not use it;"
            " drop --dsn, or use --pg dsn (or auto)"
        )
    version = getattr(args, "pg_version", None)
    if version is not None:
        pin_version(version, pg or "auto", dsn)
    if args.command == "explore" and args.profile is not None and args.strategy != "hypothesis":
        raise InputError(
            f"--profile: Hypothesis profiles apply to the hypothesis strategy only, not"
            f" {args.strategy}; drop --profile or use --strategy hypothesis"
        )
    if args.command == "run" and args.in_database:
        _in_database(pg, dsn)
    split = getattr(args, "split_commits", None)
    if split is False and getattr(args, "tx", None):
        raise InputError(
            "--no-split-commits: workers on --tx gateways split commits (the setting reaches"
            " only the processes started here); drop --no-split-commits or --tx"
        )
    if split is not None:  # for this process and the worker processes it starts
        os.environ[commits.ENV] = "1" if split else "0"
    if args.command == "soak":
        _soak(args)
    if args.command == "bench":
        _bench(args, pg, dsn)


def pin_version(version: str, pg: str, dsn: str | None) -> None:
    """Check ``--pg-version`` (a version installed here, no server given by a DSN or
    Docker) and set ``RACESIM_PG_VERSION`` so that every server racesim provisions,
    in this process and in its worker processes, runs it."""
    from racesim.provision.binaries import VersionNotFound, find_binaries
    from racesim.provision.provide import pg_version, refuse_version_with

    major = pg_version(version)
    env_dsn = config.resolve("dsn")
    origin = "--dsn" if dsn is not None else (env_dsn.origin if env_dsn.value else None)
    refuse_version_with("--pg-version", pg, origin)
    try:
        find_binaries(str(major))
    except VersionNotFound as exc:
        raise InputError(f"--pg-version {major}: {exc}") from None
    os.environ["RACESIM_PG_VERSION"] = str(major)


def _in_database(pg: str | None, dsn: str | None) -> None:
    if pg in ("local", "docker"):
        raise InputError(
            f"--in-database: --pg {pg} starts a server of racesim's own, with no database of"
            f" yours to run in; fix: drop --pg {pg} and give --dsn naming the database"
        )
    if dsn is None and config.value("dsn") is None:
        raise InputError(
            "--in-database: runs the spec in the database --dsn names, and no --dsn is given"
            " (nor RACESIM_DSN); fix: add --dsn postgresql://user@host/DATABASE"
        )


def _soak(args: argparse.Namespace) -> None:
    if args.minutes <= 0 or args.window <= 0:
        raise InputError(
            f"soak: --minutes and --window must be positive, got {args.minutes:g} and"
            f" {args.window:g}"
        )
    windows = args.minutes * 60 / args.window
    if windows < 1 or abs(windows - round(windows)) > 1e-9:
        raise InputError(
            f"soak: --minutes {args.minutes:g} is not a whole number of --window"
            f" {args.window:g}s windows; choose --window so that it divides"
            f" {args.minutes * 60:g}s"
        )


def _bench(args: argparse.Namespace, pg: str | None, dsn: str | None) -> None:
    what = args.what
    if what in ("startup", "parallel") and (dsn is not None or pg in ("dsn", "docker")):
        given = "--dsn" if dsn is not None else f"--pg {pg}"
        why = (
            "measures racesim's own local cluster"
            if what == "startup"
            else "runs the test suite, which provisions its own servers"
        )
        raise InputError(f"bench {what}: it {why} and takes no {given}; drop {given}")
    if args.per_process and what != "spec":
        raise InputError(f"--per-process: only bench spec runs specs, not bench {what}; drop it")
    if args.seeds is not None and what != "explore":
        raise InputError(f"--seeds: only bench explore runs seeds, not bench {what}; drop it")
    if args.repeat is not None and what == "explore":
        raise InputError("--repeat: bench explore repeats over seeds; use --seeds N instead")
    if args.seeds is not None and args.seeds < 1:
        raise InputError(f"--seeds: expected 1 or more, got {args.seeds}")
    least = _ENGINE_ROUNDS if what == "engine" else 1
    if args.repeat is not None and args.repeat < least:
        raise InputError(f"--repeat: bench {what} needs {least} or more, got {args.repeat}")


def split_agrees(scenarios: list[Scenario], given: bool | None) -> None:
    """InputError when ``--split-commits`` or ``--no-split-commits`` contradicts a
    scenario file that says (``split_commits =``) or whose schedule needs (a
    ``NAME/commit`` step) how its statements run: the file decides."""
    for s in scenarios:
        if given is None or s.plan.split_commits in (None, given):
            continue
        steps = [e for e in s.plan.entries if getattr(e, "call", "").endswith(commits.COMMIT)]
        where = f"{s.path}:{steps[0].line or 1}" if steps else s.path
        why = "its schedule has commit steps" if steps else f"it sets {commits.KEY} = false"
        flag = "--split-commits" if given else "--no-split-commits"
        raise InputError(
            f"{where}: {flag}: the file runs {'without' if given else 'with'} split commits"
            f" ({why}); drop {flag}"
        )
