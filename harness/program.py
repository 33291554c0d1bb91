"""What a program is: a generator yielding ``Call`` values, one step at a time.

A program never knows whether a scenario file or an explorer drives it: it yields
its next call, is sent that call's result (or has its exception thrown in at the
``yield``), and returns the run's final answer. ``Program`` is how a ``System``
lists one (``racesim.system``).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Call", "CallKind", "InjectedFault", "Option", "Program", "ProgramRun", "RunContext"]

CallKind = Literal["db", "sql", "work", "send", "receive", "crash"]
"""What a call is, which is all the harness needs to know to carry it out:

``db``       a method of the run's store (``getattr(store, call.name)(*call.args)``);
``sql``      one fixed statement (``call.sql``) on the run's own session; the only
             kind that may leave a transaction open;
``work``     work without database calls; a step of its own so a schedule can
             place other steps "during" it;
``send``     hand ``call.args[0]`` on: it goes into the sending run's mailbox;
``receive``  take what the run named in ``call.args[0]`` sent (None if nothing yet);
``crash``    the run's process dies here: its session closes, nothing after runs.
"""


@dataclass(frozen=True)
class Call:
    """One step of a program: what it asks for next."""

    name: str
    args: tuple[Any, ...] = ()
    kind: CallKind = "db"
    sql: str = ""
    fault: str = ""
    """When set, the call fails with ``InjectedFault(fault)`` instead of running."""


class InjectedFault(RuntimeError):
    """A failure a run was given (a call with ``fault`` set raises it at its ``yield``)."""


ProgramRun = Generator[Call, Any, str]
"""A running program: yields calls, is sent each call's result (or has its exception
thrown in at the ``yield``), and returns the run's final answer as a short string."""


@dataclass(frozen=True)
class RunContext:
    """What one run of a program knows about itself."""

    actor: str
    variant: str
    options: Mapping[str, Any] = field(default_factory=dict)
    faults: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Option:
    """An actor option a program reads: how to check a value and what to write instead."""

    check: Callable[[Any], bool]
    help: str
    """The fix, e.g. ``use "sync" or "async"``."""


@dataclass(frozen=True)
class Program:
    """A caller: how to start a run of it, and what a scenario may say about it."""

    make: Callable[[RunContext], ProgramRun]
    calls: frozenset[str]
    """Every call name the program can yield (schedule steps are checked against it)."""
    options: Mapping[str, Option] = field(default_factory=dict)
    faults: frozenset[str] = frozenset()
    """The faults a run of this program can meet."""
