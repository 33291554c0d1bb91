"""Hypothesis state machines over the engine: runs start, step, the clock moves.

``race_machine(store, pool)`` builds a ``RuleBasedStateMachine`` whose rules

* ``start`` a run from a roster of the reference callers (two cron runs, a sync
  and an async refresh, the two deliveries of the async invoke, the page's
  poll); a delivery can start only once its invoke was sent;
* ``step`` one started run by one call;
* ``move_clock`` by +6m (past the 5-minute window);

and whose ``initialize`` rule injects faults (invoke failure, persist failure,
crash before the deferred clear, lock check failure) into roster runs. After
every rule the engine's checks (no foreign clear, banner stays up, agreement
with the model for ``token``) are the machine's invariant; a failure message
is the run's timeline. Each example runs on one pooled database, reset between
examples, so Hypothesis is not slowed by setup.

Example::

    with SessionPool(conninfo, "legacy") as pool:
        run_state_machine_as_test(race_machine("legacy", pool), settings=settings_for("dev"))
"""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from racesim.engine.pool import SessionPool
from racesim.explore.drive import CLOCK_MOVE, Drive
from racesim.formats.writer import save, scenario_text
from racesim.model.verdict import Verdict
from racesim.report.text import Reporter

__all__ = ["ROSTER", "RaceFound", "race_machine"]

from racesim.model.plan import Actor

ROSTER: tuple[Actor, ...] = (
    Actor("cron", "cron"),
    Actor("cron2", "cron"),
    Actor("user", "refresh", {"mode": "sync"}),
    Actor("user2", "refresh", {"mode": "async"}),
    Actor("first", "background", {"invoked_by": "user2"}),
    Actor("second", "background", {"invoked_by": "user2"}),
    Actor("page", "poll", {"polls": 3}),
)
"""Every run a machine may start, in the order the engine opens their sessions."""

_FAULTS = {
    "cron": ("persist_fails", "crash_before_clear"),
    "refresh": ("invoke_fails", "persist_fails", "crash_before_clear"),
    "background": ("lock_check_fails", "persist_fails", "crash_before_clear"),
    "poll": (),
}
_FAULT_CHOICES = [
    (a.name, f)
    for a in ROSTER
    for f in _FAULTS[a.program]
    if not (f == "invoke_fails" and a.options.get("mode") == "sync")
]


MAX_CLOCK_MOVES = 2
"""Clock moves per example: a rule without arguments is drawn often, and every
move past the window makes markers stale (and the run uninteresting)."""


class RaceFound(AssertionError):
    """A machine's run broke an invariant; the message is its timeline."""


def race_machine(
    store: str,
    pool: SessionPool | None,
    seed: int = 0,
    roster: tuple[Actor, ...] = ROSTER,
    clock_moves: int = MAX_CLOCK_MOVES,
    out: Path | None = None,
) -> type[RuleBasedStateMachine]:
    """A state machine class running ``roster`` on ``store`` (``pool`` None for model).

    A smaller roster (say, only the async refresh and its two deliveries) makes a
    deep race in that corner likelier within the same number of examples. Faults
    set on the roster's actors are always on; the machine may draw more.
    ``clock_moves`` caps the moves of the virtual clock per example (0: none).
    With ``out``, a failing example is saved there as a scenario file before the
    failure is raised (Hypothesis replays the shrunk example last, so the file
    left is the shrunk one).
    """
    names = {a.name for a in roster}
    fault_choices = [(n, f) for n, f in _FAULT_CHOICES if n in names]

    class RaceMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.drive: Drive | None = None
            self.started: list[str] = []
            self.moves = 0

        @initialize(faults=st.lists(st.sampled_from(fault_choices), unique=True, max_size=3))
        def inject_faults(self, faults: list[tuple[str, str]]) -> None:
            actors = tuple(
                replace(a, faults=a.faults | {f for n, f in faults if n == a.name}) for a in roster
            )
            self.drive = Drive(actors, store, pool=pool, seed=seed)
            self.drive.__enter__()

        @rule(i=st.integers(0, len(roster) - 1))
        def start(self, i: int) -> None:
            assert self.drive is not None
            actor = roster[i]
            invoker = str(actor.options.get("invoked_by", ""))
            if invoker and invoker not in self.drive.engine.deliveries:
                return  # nothing delivered yet: the platform has nothing to start
            if actor.name not in self.started:
                self.started.append(actor.name)

        @precondition(lambda self: bool(self.started))
        @rule(i=st.integers(0, len(roster) - 1))
        def step(self, i: int) -> None:
            assert self.drive is not None
            ready = [a for a in self.started if self.drive.engine.next_call(a) is not None]
            if ready:
                self.drive.take(ready[i % len(ready)])

        @precondition(lambda self: bool(self.started) and self.moves < clock_moves)
        @rule()
        def move_clock(self) -> None:
            assert self.drive is not None
            self.moves += 1
            self.drive.take(CLOCK_MOVE)

        @invariant()
        def checks_hold(self) -> None:
            if self.drive is None:
                return
            outcome = self.drive.outcome()
            found = outcome.checker.violations
            if found:
                text = io.StringIO()
                verdict = Verdict(
                    False, f"breaks {found[0].invariant} at {found[0].label}", tuple(found)
                )
                first = found[0]
                where = "<machine>"
                if out is not None:
                    saved = save(
                        scenario_text(
                            self.drive.plan(),
                            store,
                            first.invariant,
                            first.label,
                            name=f"{first.invariant} on {store}: {first.message}",
                            description=f"Found by a racesim state machine (seed {seed}).",
                        ),
                        out / f"machine-{store}-{first.invariant}-seed{seed}.toml",
                    )
                    where = str(saved)
                Reporter(text).run(f"machine on {store}", where, outcome, verdict)
                raise RaceFound(f"{first.invariant}: {first.message}\n{text.getvalue()}")

        def teardown(self) -> None:
            if self.drive is not None:
                self.drive.__exit__(None, None, None)

    RaceMachine.__name__ = RaceMachine.__qualname__ = f"RaceMachine_{store}"
    return RaceMachine
