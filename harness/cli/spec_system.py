"""``racesim explore FILE.spec --strategy hypothesis|pct``: the spec as a System.

The search is racesim's own (``racesim.explore``), on the system
``racesim.spec.system`` makes of the spec; each counterexample is saved as a
scenario file naming that system (``racesim replay`` re-runs it) and, beside it, as
a ``.spec`` of the same run (``--export-spec``), which isolationtester replays.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from racesim.engine.loop import Options
from racesim.errors import EXIT_FLAKY, EXIT_FOUND, EXIT_OK, InputError
from racesim.explore.run import ExploreOptions, explore
from racesim.formats.writer import save
from racesim.report.text import Reporter
from racesim.runner import databases, run_plan
from racesim.spec.explore import companion
from racesim.spec.export import capture, write
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
        for key in sorted(result.found):
            driven = result.found[key]
            target = result.files[key].with_suffix(".spec")
            full = run_plan(driven.plan, STORE, dbs, Options(), system=system)
            try:
                text = write(full.history, driven.plan.actors, capture(dbs.server, system, STORE))
            except InputError as exc:
                reporter.line(f"   no .spec of {key}: {exc.problems[0]}")
                continue
            reporter.line(f"   as a .spec: {save(text.text, target)} (isolationtester replays it)")
    if result.found:
        return EXIT_FOUND
    return EXIT_FLAKY if result.flaky else EXIT_OK
