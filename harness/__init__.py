"""racesim: several callers of one PostgreSQL database, in any interleaving, checked after every step.

The public face, kept small as Hypothesis keeps its own: the few names most uses
need are here, and the rest live in public submodules, each with its ``__all__``
(described in docs/writing-a-system.md):

=====================  =====================================================
``racesim.system``     writing a System: System, Variant, Program, Call, the
                       invariants' Event, History and Violation, Footprint ...
``racesim.run``        running one schedule: load, Plan, execute, judge ...
``racesim.explore``    exploring schedules: explore, schedules, drive ...
``racesim.provision``  a PostgreSQL: provide, Server, Databases
``racesim.errors``     RacesimError and its kinds, the exit statuses
``racesim.code``       racing functions a project already has
``racesim.footprints`` what SQL reads and writes
``racesim.testing``    pytest fixtures with a schema loaded
=====================  =====================================================

Everything else is machinery whose names may change. Importing ``racesim`` is
cheap: each name and submodule is loaded on first use, so a test run that never
touches racesim (the pytest plugin loads into every test run of a project that
installs it) pays for nothing but this file.

>>> import racesim                                                    # doctest: +SKIP
>>> scenario = racesim.load("scenarios/t0-t4-cron-wipes-user.toml")  # doctest: +SKIP
>>> outcome = racesim.execute(scenario.plan, "model", system=scenario.system)  # doctest: +SKIP
>>> outcome.checker.violations                                       # doctest: +SKIP
[]
"""

from __future__ import annotations

import importlib
import warnings
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from racesim import code as code
    from racesim import errors as errors
    from racesim import explore as explore
    from racesim import footprints as footprints
    from racesim import provision as provision
    from racesim import run as run
    from racesim import system as system
    from racesim import testing as testing
    from racesim.engine.loop import execute
    from racesim.errors import InputError, RacesimError
    from racesim.formats.scenario import load
    from racesim.model.history import Event
    from racesim.model.violation import Violation
    from racesim.spec.export import export_spec
    from racesim.system import Call, Program, System, Variant

# Where each public name lives. A test checks that every one resolves and that
# __all__ lists exactly these.
_HOMES = {
    "Call": "racesim.system",
    "Event": "racesim.system",
    "Program": "racesim.system",
    "System": "racesim.system",
    "Variant": "racesim.system",
    "Violation": "racesim.system",
    "execute": "racesim.run",
    "load": "racesim.run",
    "export_spec": "racesim.spec.export",
    "InputError": "racesim.errors",
    "RacesimError": "racesim.errors",
}

SUBMODULES = (
    "code",
    "errors",
    "explore",
    "footprints",
    "provision",
    "run",
    "system",
    "testing",
)
"""The public submodules, each with an ``__all__`` of its public names."""

# Names the top level had before the submodules: they still resolve, with a
# DeprecationWarning naming the submodule to import them from instead.
_MOVED = {
    "Actor": "racesim.run",
    "ClockMove": "racesim.run",
    "Config": "racesim.system",
    "Databases": "racesim.provision",
    "ExploreOptions": "racesim.explore",
    "Explored": "racesim.explore",
    "Followers": "racesim.system",
    "Footprint": "racesim.system",
    "HarnessError": "racesim.errors",
    "InjectedFault": "racesim.system",
    "Invariants": "racesim.system",
    "Option": "racesim.system",
    "Options": "racesim.run",
    "Outage": "racesim.run",
    "Outcome": "racesim.run",
    "Plan": "racesim.run",
    "Problem": "racesim.errors",
    "ProvisionError": "racesim.errors",
    "RunContext": "racesim.system",
    "RunKind": "racesim.system",
    "Scenario": "racesim.run",
    "Server": "racesim.provision",
    "Session": "racesim.system",
    "Show": "racesim.system",
    "Step": "racesim.run",
    "Verdict": "racesim.run",
    "Window": "racesim.system",
    "check": "racesim.run",
    "judge": "racesim.run",
    "parse": "racesim.run",
    "provide": "racesim.provision",
    "resolve": "racesim.system",
    "spec_system": "racesim.spec.system",
    "sql_reset": "racesim.system",
    "watch_sql": "racesim.system",
}

_GONE = {
    "INVARIANTS": "each system has its own invariants: use"
    ' racesim.system.resolve("NAME").invariant_names',
}
"""Names the top level had that no longer mean anything on their own, with the fix."""

__all__ = [
    "Call",
    "Event",
    "InputError",
    "Program",
    "RacesimError",
    "System",
    "Variant",
    "Violation",
    "__version__",
    "execute",
    "export_spec",
    "load",
]


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("racesim")
        except PackageNotFoundError:  # pragma: no cover - a source tree without metadata
            return "0+unknown"
    if name in SUBMODULES:
        return importlib.import_module(f"racesim.{name}")
    home = _HOMES.get(name)
    if home is None:
        moved = _MOVED.get(name)
        if moved is None:
            gone = _GONE.get(name)
            fix = f"; {gone}" if gone else ""
            raise AttributeError(f"module 'racesim' has no attribute {name!r}{fix}")
        warnings.warn(
            f"racesim.{name} is deprecated; import it from {moved} instead",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module(moved), name)
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__, *SUBMODULES})
