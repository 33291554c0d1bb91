"""``racesim explore FILE.spec --strategy hypothesis|pct``: the spec as a System.

The search is racesim's own (``racesim.explore``), on the system
``racesim.spec.system`` makes of the spec; each confirmed counterexample is saved as
a scenario file naming that system (``racesim replay`` re-runs it) and as a ``.spec``
with a ``racesim_check`` step (:func:`racesim.spec.explore.spec_text`, as the
exhaustive strategy saves one), which isolationtester replays, printing the rows.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from racesim.engine.loop import Options
from racesim.errors import EXIT_FLAKY, EXIT_FOUND, EXIT_OK
from racesim.explore.run import Explored, ExploreOptions, explore
from racesim.files import escaped, save
from racesim.formats.names import file_part
from racesim.provision.databases import Databases
from racesim.report.text import Reporter
from racesim.runner import databases, run_plan
from racesim.spec.explore import first_broken, sent_steps, spec_text
from racesim.spec.invariants import companion, load_invariants
from racesim.spec.parse import load
from racesim.spec.system import PREFIX, STORE
from racesim.system import System, resolve

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
        _save_specs(result, spec, invariants, dbs, system, out, reporter)
    if result.found:
        return EXIT_FOUND
    return EXIT_FLAKY if result.flaky else EXIT_OK


def _save_specs(
    result: Explored,
    spec_path: Path,
    invariants_path: Path,
    dbs: Databases,
    system: System,
    out: Path,
    reporter: Reporter,
) -> None:
    """Each confirmed counterexample as a ``.spec``: the run's steps to its end (run
    once more past the violation, so that every session ends as its steps end it),
    and the broken invariant's check right after the step that broke it."""
    if not result.found:
        return
    spec = load(spec_path)
    by_name = {inv.name: inv for inv in load_invariants(invariants_path)}
    stem = file_part(spec_path.name.removesuffix(".spec"))
    for key in sorted(result.found):
        driven = result.found[key]
        broken = first_broken(driven.outcome.history.events)
        if broken is None:  # its watched state always shows it: never expected here
            reporter.line(f"   no .spec of {key}: its run shows no broken invariant")
            continue
        full = run_plan(driven.plan, STORE, dbs, Options(), system=system)
        steps = sent_steps(spec, full.history.events)
        inv = by_name[broken.name]
        saved = save(
            spec_text(spec, steps, broken.at, inv), out / f"{stem}-{file_part(inv.name)}.spec"
        )
        reporter.line(
            f"   as a .spec: {escaped(str(saved))} (isolationtester reproduces it: its"
            " racesim_check step prints the rows)"
        )
