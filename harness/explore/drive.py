"""Driving the engine one choice at a time: the common ground of every explorer.

An explorer does not write a schedule up front; it picks, step after step, which
actor moves next (or moves the clock). ``Drive`` opens an engine on a set of
actors, takes those choices, skips choices for actors that have finished, labels
every entry it really takes ``T+0``, ``T+1``, ... and names the call each step
made, so the entries it returns form a plan that replays to the same history.

Example::

    with Drive(actors, "legacy", pool=pool, system=SYSTEM) as d:
        for name in ["user", "user", "cron", "cron", "cron", "cron"]:
            d.take(name)
        plan, outcome = d.plan(), d.outcome()
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from types import TracebackType

from racesim.engine.actors import SESSION_SETTINGS
from racesim.engine.loop import Engine, Options, Outcome
from racesim.engine.pool import SessionPool
from racesim.model.plan import Actor, ClockMove, Entry, Plan, Step
from racesim.model.violation import Violation
from racesim.system import DEFAULT_SYSTEM, System, resolve

__all__ = ["PAST", "Aim", "Choice", "Drive", "Driven", "clock_moves", "drive"]

PAST = timedelta(minutes=1)
"""How far past a window's length the plain clock move goes."""


@dataclass(frozen=True)
class Aim:
    """A clock move aimed at window ``window``'s boundary (plus ``offset``): the next
    step happens exactly ``offset`` after the window closes."""

    window: int
    offset: timedelta

    def __repr__(self) -> str:
        us = self.offset // timedelta(microseconds=1)
        return f"@w{self.window}{us:+d}us"


Choice = str | timedelta | Aim
"""An actor's name (it takes its next step), a clock move, or an aimed clock move."""


def clock_moves(system: System) -> tuple[timedelta | Aim, ...]:
    """The clock moves exploration draws from: past each of the system's windows
    first (what shrinking prefers), then each window's boundary and one
    microsecond either side."""
    past: list[timedelta | Aim] = [w.length + PAST for w in system.windows]
    aims: list[timedelta | Aim] = [
        Aim(i, offset) for i, w in enumerate(system.windows) for offset in w.offsets()
    ]
    return tuple(dict.fromkeys(past)) + tuple(aims)


@dataclass(frozen=True)
class Driven:
    """A finished drive: the plan it amounts to and what happened."""

    plan: Plan
    outcome: Outcome

    @property
    def violations(self) -> list[Violation]:
        return self.outcome.checker.violations

    @property
    def first(self) -> list[Violation]:
        """The violations of the first violating step (those at the first violation's
        label), one per key: each is a counterexample of its own."""
        if not self.violations:
            return []
        label = self.violations[0].label
        keys: dict[str, Violation] = {}
        for v in self.violations:
            if v.label == label:
                keys.setdefault(v.key, v)
        return list(keys.values())

    def violation(self, key: str) -> Violation:
        """The first violation with this key."""
        return next(v for v in self.violations if v.key == key)

    @property
    def steps(self) -> int:
        return sum(isinstance(e, Step) for e in self.plan.entries)


class Drive:
    """One engine run whose schedule is chosen as it goes."""

    def __init__(
        self,
        actors: tuple[Actor, ...],
        store: str,
        *,
        conninfo: str | None = None,
        pool: SessionPool | None = None,
        options: Options | None = None,
        seed: int = 0,
        system: System,
    ) -> None:
        self.actors = actors
        self.seed = seed
        self.system = system
        self.options = options or Options(stop_at_first=True)
        self.engine = Engine(
            Plan(actors, (), seed), store, conninfo, self.options, pool, system=self.system
        )
        self.entries: list[Entry] = []

    def __enter__(self) -> Drive:
        self.engine.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.engine.close()

    @property
    def over(self) -> bool:
        """True when the run should take no more entries (stuck, or stopped at a violation)."""
        if self.engine.history.stuck:
            return True
        return self.options.stop_at_first and bool(self.engine.checker.violations)

    def enabled(self) -> list[str]:
        """Actors that still have a step to take, in declaration order; one whose step
        waits on a lock only when no other can step (see ``stalls``)."""
        ready = [a.name for a in self.actors if self.engine.next_call(a.name) is not None]
        return [a for a in ready if not self.stalls(a)]

    def stalls(self, actor: str) -> bool:
        """True when stepping ``actor`` could only wait: its step waits on a lock, it
        has no lock or statement timeout of its own to end the wait, and another
        actor can step (only another session's step can release the lock; waiting
        first would make the run stuck, never a different one)."""
        engine = self.engine
        if not engine.waiting(actor):
            return False
        options = next(a.options for a in self.actors if a.name == actor)
        if any(name in options for name in SESSION_SETTINGS):
            return False
        return any(
            a.name != actor and not engine.waiting(a.name) and engine.next_call(a.name) is not None
            for a in self.actors
        )

    def take(self, choice: Choice) -> Entry | None:
        """Take one choice; None (and nothing happens) when it cannot be taken."""
        if self.over:
            return None
        label = f"T+{len(self.entries)}"
        entry: Entry
        if isinstance(choice, Aim):
            choice = self._aim(choice)
        if isinstance(choice, timedelta):
            entry = ClockMove(choice, label)
        else:
            call = self.engine.next_call(choice)
            if call is None or self.stalls(choice):
                return None
            entry = Step(choice, call, label)
        self.engine.take(entry)
        self.entries.append(entry)
        return entry

    def _aim(self, aim: Aim) -> timedelta:
        """The move that puts the next step (a second after this entry's label) at
        the window's start plus its length plus the aim's offset; when the window
        has not started, or has already passed, the window's length plus the offset."""
        window = self.system.windows[aim.window]
        plain = window.length + aim.offset
        since = window.since(self.engine.state) if window.since is not None else None
        if since is None:
            return plain
        after = self.engine.time_at(f"T+{len(self.entries) + 1}")
        delta = since + window.length + aim.offset - after
        return delta if delta > timedelta(0) else plain

    def plan(self) -> Plan:
        """The entries taken so far, as a plan that replays them."""
        return Plan(self.actors, tuple(self.entries), self.seed)

    def outcome(self) -> Outcome:
        return self.engine.outcome()

    def driven(self) -> Driven:
        return Driven(self.plan(), self.outcome())


def drive(
    actors: tuple[Actor, ...],
    choices: list[Choice],
    store: str,
    *,
    conninfo: str | None = None,
    pool: SessionPool | None = None,
    options: Options | None = None,
    seed: int = 0,
    drain: bool = False,
    system: System | str | None = None,
) -> Driven:
    """Run ``choices`` over ``actors``; choices for finished actors are skipped.

    With ``drain``, the actors then run to their end one after another, in
    declaration order (one waiting on a lock after the others that can step, and
    again until none can): every schedule becomes a complete run, so a short list
    of choices (what Hypothesis shrinks towards) still reaches every step.
    """
    found = resolve(DEFAULT_SYSTEM if system is None else system)
    with Drive(
        actors, store, conninfo=conninfo, pool=pool, options=options, seed=seed, system=found
    ) as d:
        for choice in choices:
            if d.over:
                break
            d.take(choice)
        progress = drain
        while progress and not d.over:
            progress = False
            for actor in actors:
                while not d.over and d.take(actor.name) is not None:
                    progress = True
        return d.driven()
