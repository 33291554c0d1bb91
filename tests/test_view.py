"""The view model: lanes, spans and marks built from hand-made histories."""

from __future__ import annotations

from datetime import UTC, datetime

from racesim.checks.invariants import check
from racesim.model.history import Event, History
from racesim.model.outcome import Outcome
from racesim.model.verdict import judge
from racesim.report.view import RunView, build
from racesim.store import MarkResult
from racesim.store.invariants import Marker
from racesim.store.show import SHOW

T = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
SET = Marker(T)
UNSET = Marker(None)


def build_view(events: list[Event]) -> RunView:
    history = History("hand.toml", "legacy", SHOW, events)
    outcome = Outcome(history, check(events))
    return build("hand-made", "hand.toml", outcome, judge(outcome, None))


def test_waiting_step_is_one_span_to_its_completion() -> None:
    v = build_view(
        [
            Event(0, "step", "ops", "begin", state=UNSET),
            Event(1, "wait", "user", "mark", "T+1", blocked_by=("ops",), sql="UPDATE x"),
            Event(2, "clock", "clock", "+6m", state=UNSET),
            Event(3, "step", "ops", "commit", state=None),
            Event(4, "done", "user", "mark", result=MarkResult(ok=True), state=SET),
        ]
    )
    assert v.lanes == ("ops", "user")  # the clock is on the axis, not a lane
    [begin, mark, commit] = v.spans
    assert (mark.actor, mark.start, mark.end, mark.waited, mark.completed) == (
        "user",
        1,
        4,
        True,
        True,
    )
    assert mark.blocked_by == ("ops",)
    assert (begin.start, begin.end, commit.start) == (0, 0, 3)
    assert v.events[1].sql == "UPDATE x" and v.events[1].result == "waiting (blocked in PostgreSQL)"
    assert v.events[3].state is None and v.events[4].state is not None
    assert v.events[4].state.text.startswith("marker: set 12:00:00")


def test_wait_that_never_completes_spans_to_the_end() -> None:
    v = build_view(
        [
            Event(0, "wait", "a", "lock_advisory", state=UNSET),
            Event(1, "step", "b", "begin", state=UNSET),
            Event(2, "stuck", "a", "lock_advisory", state=UNSET),
        ]
    )
    wait = v.spans[0]
    assert wait.waited and not wait.completed and wait.end == 2
    assert v.events[2].sign == "stuck"


def test_crashes_outages_and_faults_are_marks() -> None:
    v = build_view(
        [
            Event(
                0, "step", "cron", "upsert_recommendations", error="InjectedFault: persist failed"
            ),
            Event(1, "step", "cron", "crash", finished="crashed before its deferred clear"),
            Event(2, "outage", "user", "terminate", finished="crashed: backend terminated"),
            Event(3, "outage", "bg", "restart", result="reconnected"),
            Event(4, "outage", "server", "restart", result="server restarted", state=UNSET),
        ]
    )
    assert [e.sign for e in v.events] == ["fault", "crash", "crash", "restart", "restart"]
    assert v.spans[0].failed and len(v.spans) == 2  # outages are marks, not steps
    assert v.lanes == ("cron", "user", "bg", "server")


def test_violations_sit_at_their_event_and_in_the_verdict() -> None:
    ok = MarkResult(ok=True)
    v = build_view(
        [
            Event(0, "step", "user", "mark", "T+1", result=ok, state=SET),
            Event(1, "step", "cron", "clear", "T+3", args=("",), state=UNSET),
        ]
    )
    assert [x.invariant for x in v.events[1].violations] == [
        "no-foreign-clear",
        "banner-stays-up",
    ]
    assert v.events[1].holder == "user" and v.events[1].args == ("",)
    assert v.verdict.tag == "FAIL" and v.verdict.violations[0].runs == ("cron", "user")
    assert "cron cleared the marker of user" in v.events[1].violations[0].message
