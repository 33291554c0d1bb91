"""Running one schedule: a scenario file or a ``Plan``, executed and judged.

A scenario file loads into a ``Scenario`` (its ``plan``, its ``system`` and what
it expects of each store); ``execute`` runs a plan on one store of a system (the
reference system when none is given) and returns its ``Outcome`` (the ``History``
of events and the violations the checks found); ``judge`` compares an outcome with
the file's expectation::

    from racesim.run import execute, judge, load

    scenario = load("scenarios/t0-t4-cron-wipes-user.toml")
    outcome = execute(scenario.plan, "model", system=scenario.system)
    print(judge(outcome, scenario.expect["model"]).summary)

A plan built in Python is the same value a scenario file loads into::

    from racesim.run import Actor, Plan, Step

    plan = Plan((Actor("ann", "customer"), Actor("bob", "customer")),
                (Step("ann", "free"), Step("bob", "free"), Step("ann", "book")))
"""

from __future__ import annotations

from racesim.checks.invariants import check
from racesim.engine.loop import Options, execute
from racesim.formats.scenario import Scenario, load, parse
from racesim.model.history import Event, History
from racesim.model.outcome import Outcome
from racesim.model.plan import Actor, ClockMove, Outage, Plan, Step
from racesim.model.verdict import Verdict, judge
from racesim.model.violation import Violation

__all__ = [
    "Actor",
    "ClockMove",
    "Event",
    "History",
    "Options",
    "Outage",
    "Outcome",
    "Plan",
    "Scenario",
    "Step",
    "Verdict",
    "Violation",
    "check",
    "execute",
    "judge",
    "load",
    "parse",
]
