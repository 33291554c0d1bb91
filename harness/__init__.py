"""racesim's engine: provisioning, the virtual clock, scenarios, the scheduler and checks.

>>> from harness import execute, load                        # doctest: +SKIP
>>> scenario = load("scenarios/t0-t4-cron-wipes-user.toml")  # doctest: +SKIP
>>> outcome = execute(scenario.plan, "model")                # doctest: +SKIP
>>> outcome.checker.violations                               # doctest: +SKIP
[]
"""

from harness.checks import INVARIANTS, Violation, check
from harness.databases import Databases
from harness.engine import Options, Outcome, execute
from harness.errors import HarnessError, InputError, ProvisionError, RacesimError
from harness.plan import Actor, ClockMove, Outage, Plan, Step
from harness.provision import Server, provide
from harness.scenario import Scenario, load, parse
from harness.verdict import Verdict, judge

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
