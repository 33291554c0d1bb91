"""``--export-spec``: a run written as a ``.spec`` for isolationtester (see racesim.spec.export)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from racesim.errors import InputError
from racesim.explore.export import export_found as export_found
from racesim.formats.scenario import Scenario
from racesim.formats.writer import save
from racesim.provision.databases import Databases
from racesim.runner import Result
from racesim.spec import export

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
    export.refuse_in_memory(scenario.system, store)


def export_spec(result: Result, dbs: Databases, path: Path) -> Path:
    """Write ``result``'s run as a ``.spec`` at ``path``; return the path."""
    scenario = result.scenario
    text = export.export_spec(
        result.outcome, scenario.plan.actors, dbs.server, result.store, scenario.system
    )
    return save(text, path)
