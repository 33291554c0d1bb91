"""racesim: several callers of one PostgreSQL database, in any interleaving, checked after every step.

The public face. Everything a user needs is importable from here; the modules
behind it are machinery whose names may change. Importing ``racesim`` is cheap:
each name is loaded on first use, so a test run that never touches racesim (the
pytest plugin loads into every test run of a project that installs it) pays for
nothing but this file.

>>> import racesim                                                    # doctest: +SKIP
>>> scenario = racesim.load("scenarios/t0-t4-cron-wipes-user.toml")  # doctest: +SKIP
>>> outcome = racesim.execute(scenario.plan, "model")                # doctest: +SKIP
>>> outcome.checker.violations                                       # doctest: +SKIP
[]
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from racesim.checks.invariants import INVARIANTS, Violation, check
    from racesim.engine.loop import Options, Outcome, execute
    from racesim.errors import HarnessError, InputError, Problem, ProvisionError, RacesimError
    from racesim.explore.run import Explored, ExploreOptions, explore
    from racesim.formats.scenario import Scenario, load, parse
    from racesim.model.plan import Actor, ClockMove, Outage, Plan, Step
    from racesim.model.verdict import Verdict, judge
    from racesim.provision.databases import Databases
    from racesim.provision.provide import Server, provide
    from racesim.spec.export import export_spec
    from racesim.spec.system import spec_system
    from racesim.system import (
        Call,
        Config,
        Followers,
        Footprint,
        InjectedFault,
        Invariants,
        Option,
        Program,
        RunContext,
        RunKind,
        Session,
        Show,
        System,
        Variant,
        Window,
        resolve,
        sql_reset,
        watch_sql,
    )

# Where each public name lives. A test checks that every one resolves and that
# __all__ lists exactly these.
_HOMES = {
    "INVARIANTS": "racesim.checks.invariants",
    "Violation": "racesim.checks.invariants",
    "check": "racesim.checks.invariants",
    "Options": "racesim.engine.loop",
    "Outcome": "racesim.engine.loop",
    "execute": "racesim.engine.loop",
    "HarnessError": "racesim.errors",
    "InputError": "racesim.errors",
    "ProvisionError": "racesim.errors",
    "RacesimError": "racesim.errors",
    "ExploreOptions": "racesim.explore.run",
    "Explored": "racesim.explore.run",
    "explore": "racesim.explore.run",
    "Scenario": "racesim.formats.scenario",
    "load": "racesim.formats.scenario",
    "parse": "racesim.formats.scenario",
    "Actor": "racesim.model.plan",
    "ClockMove": "racesim.model.plan",
    "Outage": "racesim.model.plan",
    "Plan": "racesim.model.plan",
    "Step": "racesim.model.plan",
    "Verdict": "racesim.model.verdict",
    "judge": "racesim.model.verdict",
    "Databases": "racesim.provision.databases",
    "Server": "racesim.provision.provide",
    "provide": "racesim.provision.provide",
    "Call": "racesim.system",
    "Config": "racesim.system",
    "Followers": "racesim.system",
    "Footprint": "racesim.system",
    "InjectedFault": "racesim.system",
    "Invariants": "racesim.system",
    "Option": "racesim.system",
    "Program": "racesim.system",
    "RunContext": "racesim.system",
    "RunKind": "racesim.system",
    "Session": "racesim.system",
    "Show": "racesim.system",
    "System": "racesim.system",
    "Variant": "racesim.system",
    "Window": "racesim.system",
    "resolve": "racesim.system",
    "sql_reset": "racesim.system",
    "watch_sql": "racesim.system",
    "Problem": "racesim.errors",
    "export_spec": "racesim.spec.export",
    "spec_system": "racesim.spec.system",
}

__all__ = [
    "INVARIANTS",
    "Actor",
    "Call",
    "ClockMove",
    "Config",
    "Databases",
    "ExploreOptions",
    "Explored",
    "Followers",
    "Footprint",
    "HarnessError",
    "InjectedFault",
    "InputError",
    "Invariants",
    "Option",
    "Options",
    "Outage",
    "Outcome",
    "Plan",
    "Problem",
    "Program",
    "ProvisionError",
    "RacesimError",
    "RunContext",
    "RunKind",
    "Scenario",
    "Server",
    "Session",
    "Show",
    "Step",
    "System",
    "Variant",
    "Verdict",
    "Violation",
    "Window",
    "__version__",
    "check",
    "execute",
    "explore",
    "export_spec",
    "judge",
    "load",
    "parse",
    "provide",
    "resolve",
    "spec_system",
    "sql_reset",
    "watch_sql",
]


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("racesim")
        except PackageNotFoundError:  # pragma: no cover - a source tree without metadata
            return "0+unknown"
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'racesim' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
