"""``explore --export-spec``: each saved counterexample also as a ``.spec`` for
isolationtester (see :mod:`racesim.spec.export`)."""

from __future__ import annotations

from racesim.engine.loop import Options
from racesim.errors import InputError
from racesim.explore.run import Explored
from racesim.files import escaped, save
from racesim.provision.databases import Databases
from racesim.report.text import Reporter
from racesim.runner import run_plan
from racesim.spec import export
from racesim.system import System

__all__ = ["export_found"]


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
