"""``racesim explore FILE.spec --strategy hypothesis|pct``: the spec as a System.

The search is racesim's own (``racesim.explore``), on the system
``racesim.spec.system`` makes of the spec; each counterexample is saved as a
scenario file naming that system (``racesim replay`` re-runs it) and, beside it, as
a ``.spec`` of the same run (``--export-spec``), which isolationtester replays.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from racesim.cli.export import export_found
from racesim.errors import EXIT_FLAKY, EXIT_FOUND, EXIT_OK
from racesim.explore.run import ExploreOptions, explore
from racesim.report.text import Reporter
from racesim.runner import databases
from racesim.spec.invariants import companion
from racesim.spec.system import PREFIX, STORE
from racesim.system import resolve

__all__ = ["explore_system"]


def system_name(spec: Path, invariants: Path) -> str:
    """``spec:PATH`` (absolute), with ``:INVARIANTS`` when not the companion file."""
    name = f"{PREFIX}{spec.resolve()}"
    if invariants.resolve() != companion(spec).resolve():
        name += f":{invariants.resolve()}"
    return name


def explore_system(
    args: argparse.Namespace, spec: Path, invariants: Path, out: Path, reporter: Reporter
) -> int:
    system = resolve(system_name(spec, invariants))
    opts = ExploreOptions(
        store=STORE,
        seed=args.seed,
        max_examples=args.max_examples,
        strategy=args.strategy,
        out=out,
        system=system,
    )
    with databases(args.pg, args.dsn, system, say=reporter.problem) as dbs:
        result = explore(opts, dbs, reporter)
        export_found(result, dbs, system, STORE, reporter)
    if result.found:
        return EXIT_FOUND
    return EXIT_FLAKY if result.flaky else EXIT_OK
