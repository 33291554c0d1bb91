"""Deadlocks against real PostgreSQL: the record does not depend on whether the
engine saw the closing step wait before the server's deadlock check ended it."""

from __future__ import annotations

import time
from typing import Any

import pytest

from racesim.engine import waits
from racesim.engine.loop import execute
from racesim.model.history import Event
from racesim.model.plan import Actor, Plan, Step

ACTORS = (
    Actor("a", "locker", {"hold": "row+advisory"}),
    Actor("b", "locker", {"hold": "advisory+row"}),
)
CLOSING = (
    Step("a", "begin"),
    Step("a", "lock_row"),
    Step("b", "begin"),
    Step("b", "lock_advisory"),
    Step("a", "lock_advisory"),
    Step("b", "lock_row"),  # closes the cycle: b's own deadlock check ends it
)


def summary(events: list[Event]) -> list[tuple[Any, ...]]:
    """What a run recorded, without the wall-clock fields."""
    return [
        (e.kind, e.actor, e.call, e.sqlstate, e.finished, e.blocked_by, e.state is None)
        for e in events
    ]


def slow_observation(monkeypatch: pytest.MonkeyPatch, delay: float) -> None:
    """Every look at whether b's step waits comes ``delay`` seconds late: longer than
    the 20 ms after which the server's deadlock check ends b's wait."""
    original = waits.Monitor.is_blocked

    def late(self: waits.Monitor, run: Any) -> bool:
        if run.actor.name == "b":
            time.sleep(delay)
        return original(self, run)

    monkeypatch.setattr(waits.Monitor, "is_blocked", late)


@pytest.mark.parametrize(
    "then",
    [
        (Step("a"), Step("a"), Step("b")),  # a's wait first: what b's failure released
        (Step("b"), Step("b"), Step("a")),  # b's failure first
    ],
    ids=["await-released", "await-victim"],
)
def test_a_deadlock_seen_late_is_recorded_as_one_seen_at_once(
    conninfo: str, monkeypatch: pytest.MonkeyPatch, then: tuple[Step, ...]
) -> None:
    plan = Plan(actors=ACTORS, entries=CLOSING + then)
    prompt = summary(execute(plan, "token", conninfo).history.events)
    slow_observation(monkeypatch, 0.1)
    late = summary(execute(plan, "token", conninfo).history.events)
    assert late == prompt
    closing = [e for e in prompt if e[1:3] == ("b", "lock_row")]
    assert [e[0] for e in closing] == ["wait", "done"]
    assert closing[0][5] == ("a",)  # it waited on a
    assert closing[1][3] == "40P01"  # and failed as the deadlock's victim
    finished = {e[1]: e[4] for e in prompt if e[4]}
    assert finished == {"a": "committed", "b": "rolled back after DeadlockDetected"}


def test_a_deadlock_is_over_before_the_next_step_is_sent(conninfo: str) -> None:
    """The step after the closing one meets the deadlock over: its victim failed and
    what the victim held went to the session that waited for it."""
    actors = (*ACTORS, Actor("c", "locker", {"hold": "advisory"}))
    then = (Step("c", "begin"), Step("c", "lock_advisory"), Step("a", "commit"))
    events = execute(Plan(actors=actors, entries=(*CLOSING, *then)), "token", conninfo)
    lock = [e for e in events.history.events if e.actor == "c" and e.call == "lock_advisory"]
    assert [(e.kind, e.blocked_by) for e in lock] == [("wait", ("a",)), ("done", ())]
