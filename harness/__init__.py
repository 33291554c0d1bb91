"""racesim's engine: provisioning, the virtual clock, scenarios, the scheduler and checks.

>>> from harness import execute, load                        # doctest: +SKIP
>>> scenario = load("scenarios/t0-t4-cron-wipes-user.toml")  # doctest: +SKIP
>>> outcome = execute(scenario.plan, "model")                # doctest: +SKIP
>>> outcome.checker.violations                               # doctest: +SKIP
[]
"""

from racesim.checks.invariants import INVARIANTS, Violation, check
from racesim.engine.loop import Options, Outcome, execute
from racesim.errors import HarnessError, InputError, ProvisionError, RacesimError
from racesim.formats.scenario import Scenario, load, parse
from racesim.model.plan import Actor, ClockMove, Outage, Plan, Step
from racesim.model.verdict import Verdict, judge
from racesim.provision.databases import Databases
from racesim.provision.provide import Server, provide

__all__ = [
    "INVARIANTS",
    "Actor",
    "ClockMove",
    "Databases",
    "HarnessError",
    "InputError",
    "Options",
    "Outage",
    "Outcome",
    "Plan",
    "ProvisionError",
    "RacesimError",
    "Scenario",
    "Server",
    "Step",
    "Verdict",
    "Violation",
    "check",
    "execute",
    "judge",
    "load",
    "parse",
    "provide",
]
