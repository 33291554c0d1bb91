"""``--export-spec``: a run written as a ``.spec`` for isolationtester (see racesim.spec.export)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from racesim.engine.loop import Options
from racesim.errors import InputError
from racesim.explore.run import Explored
from racesim.formats.names import escaped
from racesim.formats.scenario import Scenario
from racesim.formats.writer import save
from racesim.provision.databases import Databases
from racesim.report.text import Reporter
from racesim.runner import Result, run_plan
from racesim.spec import export
from racesim.system import System, resolve

__all__ = ["export_found", "export_spec", "exportable"]


def exportable(jobs: Sequence[tuple[Scenario, str]]) -> None:
    """InputError unless ``jobs`` is one run on a store that uses the database."""
    runs = [f"{Path(s.path).name} on {store}" for s, store in jobs]
    if len(jobs) != 1:
        raise InputError(
            f"--export-spec: writes one run, and this command makes {len(jobs)}"
            f" ({', '.join(runs[:4])}{', ...' if len(runs) > 4 else ''}); fix: give one"
            " scenario and --store NAME"
        )
    scenario, store = jobs[0]
    export.refuse_in_memory(resolve(scenario.system), store)


def export_spec(result: Result, dbs: Databases, path: Path) -> Path:
    """Write ``result``'s run as a ``.spec`` at ``path``; return the path."""
    scenario = result.scenario
    text = export.export_spec(
        result.outcome, scenario.plan.actors, dbs.server, result.store, scenario.system
    )
    return save(text, path)


def export_found(
    result: Explored, dbs: Databases, system: System, store: str, reporter: Reporter
) -> None:
    """Beside each saved counterexample, its run as a ``.spec`` (same name, ``.spec``).

    The counterexample is run again to its end (the search stopped at the
    violation), so that every step it sent completes in the ``.spec`` too.
    """
    setup = None
    for key in sorted(result.found):
        driven = result.found[key]
        target = result.files[key].with_suffix(".spec")
        full = run_plan(driven.plan, store, dbs, Options(), system=system)
        try:
            setup = setup or export.capture(dbs.server, system, store)
            text = export.write(full.history, driven.plan.actors, setup).text
        except InputError as exc:
            reporter.line(f"   no .spec of {key}: {exc.problems[0]}")
            continue
        reporter.line(
            f"   as a .spec: {escaped(str(save(text, target)))} (isolationtester replays it)"
        )
