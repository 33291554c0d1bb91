"""Hypothesis state machines over the engine: runs start, step, the clock moves.

``race_machine(store, pool, system=...)`` builds a ``RuleBasedStateMachine`` over a
roster (the system's ``roster`` configuration by default) whose rules

* ``start`` a run of the roster; a run another run's send starts (the system's
  ``trigger``) can start only once that send happened;
* ``step`` one started run by one call;
* ``move_clock`` by one of the system's clock moves (past a time window, or at
  its boundary and one microsecond either side);

and whose ``initialize`` rule injects faults (the configuration's per-actor
fault choices) into roster runs. After every rule the engine's checks are the
machine's invariant; a failure message is the run's timeline. Each example runs
on one pooled database, reset between examples, so Hypothesis is not slowed by
setup.

Example::

    with SessionPool(conninfo, "legacy", SYSTEM) as pool:
        machine = race_machine("legacy", pool, system=SYSTEM)
        run_state_machine_as_test(machine, settings=settings_for("dev"))
"""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import timedelta
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
from racesim.explore.drive import Aim, Drive
from racesim.explore.drive import clock_moves as clock_moves_of
from racesim.formats.names import file_part
from racesim.formats.writer import save, scenario_text
from racesim.model.plan import Actor
from racesim.model.verdict import Verdict
from racesim.report.text import Reporter
from racesim.system import System, spec_of

__all__ = ["ROSTER", "RaceFound", "race_machine"]

ROSTER = "roster"
"""The configuration a machine takes its runs from, unless told otherwise."""

MAX_CLOCK_MOVES = 2
"""Clock moves per example: a rule without arguments is drawn often, and every
move past the window makes markers stale (and the run uninteresting)."""


class RaceFound(AssertionError):
    """A machine's run broke an invariant; the message is its timeline."""


def race_machine(
    store: str,
    pool: SessionPool | None,
    seed: int = 0,
    roster: tuple[Actor, ...] | None = None,
    clock_moves: int = MAX_CLOCK_MOVES,
    out: Path | None = None,
    *,
    system: System,
    config: str = ROSTER,
) -> type[RuleBasedStateMachine]:
    """A state machine class running ``roster`` on ``store`` (``pool`` None in memory).

    ``roster`` defaults to the system's configuration ``config``; the fault choices
    are that configuration's, for the roster's actors.

    A smaller roster (say, only one sender and the runs it starts) makes a
    deep race in that corner likelier within the same number of examples. Faults
    set on the roster's actors are always on; the machine may draw more.
    ``clock_moves`` caps the moves of the virtual clock per example (0: none).
    With ``out``, a failing example is saved there as a scenario file before the
    failure is raised (Hypothesis replays the shrunk example last, so the file
    left is the shrunk one).
    """
    found = system
    chosen = found.configs.get(config) or found.config(None, "machine")
    actors: tuple[Actor, ...] = roster if roster is not None else chosen.roster()
    names = {a.name for a in actors}
    fault_choices = [
        (a.name, f)
        for a in chosen.roster()
        for f in chosen.faults.get(a.name, ())
        if a.name in names
    ]
    moves = clock_moves_of(found) if clock_moves else ()
    spec = spec_of(found)  # how a saved example names the system
    most_moves = clock_moves if moves else 0

    class RaceMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.drive: Drive | None = None
            self.started: list[str] = []
            self.moves = 0

        @initialize(faults=st.lists(st.sampled_from(fault_choices), unique=True, max_size=3))
        def inject_faults(self, faults: list[tuple[str, str]]) -> None:
            runs = tuple(
                replace(a, faults=a.faults | {f for n, f in faults if n == a.name}) for a in actors
            )
            self.drive = Drive(runs, store, pool=pool, seed=seed, system=found)
            self.drive.__enter__()

        @rule(i=st.integers(0, len(actors) - 1))
        def start(self, i: int) -> None:
            assert self.drive is not None
            actor = actors[i]
            sender = found.trigger(actor)
            if sender and sender not in self.drive.engine.mailbox:
                return  # nothing sent yet: nothing starts this run
            if actor.name not in self.started:
                self.started.append(actor.name)

        @precondition(lambda self: bool(self.started))
        @rule(i=st.integers(0, len(actors) - 1))
        def step(self, i: int) -> None:
            assert self.drive is not None
            ready = [a for a in self.started if self.drive.engine.next_call(a) is not None]
            if ready:
                self.drive.take(ready[i % len(ready)])

        @precondition(lambda self: bool(self.started) and self.moves < most_moves)
        @rule(move=st.sampled_from(moves or (timedelta(0),)))
        def move_clock(self, move: timedelta | Aim) -> None:
            assert self.drive is not None
            self.moves += 1
            self.drive.take(move)

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
                            system=spec,
                        ),
                        out / f"machine-{file_part(store)}-{first.slug}-seed{seed}.toml",
                    )
                    where = str(saved)
                Reporter(text).run(f"machine on {store}", where, outcome, verdict)
                raise RaceFound(f"{first.invariant}: {first.message}\n{text.getvalue()}")

        def teardown(self) -> None:
            if self.drive is not None:
                self.drive.__exit__(None, None, None)

    RaceMachine.__name__ = RaceMachine.__qualname__ = f"RaceMachine_{store}"
    return RaceMachine
