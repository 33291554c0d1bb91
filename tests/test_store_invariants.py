"""The reference invariants on hand-made histories: what is a foreign clear, and what is not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from racesim.checks.invariants import MODEL_AGREEMENT, check
from racesim.model.history import Event
from racesim.model.plan import Actor
from racesim.store import MarkResult
from racesim.store.invariants import BANNER_STAYS_UP, NO_FOREIGN_CLEAR, NO_MARKER, Marker

ASYNC = (
    Actor("user", "refresh", {"mode": "async"}),
    Actor("first", "background", {"invoked_by": "user"}),
    Actor("second", "background", {"invoked_by": "user"}),
    Actor("bg", "background", {"invoked_by": "user"}),
)

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


class History:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def add(
        self, actor: str, call: str, marker: Marker, at: timedelta = timedelta(0), **fields: Any
    ) -> History:
        self.events.append(
            Event(
                seq=len(self.events),
                kind="step",
                actor=actor,
                call=call,
                label=f"T+{len(self.events)}",
                state=marker,
                vtime=T0 + at,
                **fields,
            )
        )
        return self


def held(owner: str | None = None, at: timedelta = timedelta(0)) -> Marker:
    return Marker(T0 + at, owner)


def test_clearing_your_own_marker_is_fine() -> None:
    h = (
        History()
        .add("a", "mark", held("t1"), result=MarkResult(True, "t1"))
        .add("a", "clear", NO_MARKER)
    )
    assert check(h.events).violations == []


def test_clearing_someone_elses_marker_is_a_foreign_clear() -> None:
    h = (
        History()
        .add("a", "mark", held(), result=MarkResult(True))
        .add("b", "mark", held(), result=MarkResult(False))
        .add("b", "clear", NO_MARKER)
    )
    found = check(h.events).violations
    assert [(v.invariant, v.seq, v.runs) for v in found] == [
        (NO_FOREIGN_CLEAR, 2, ("b", "a")),
        (BANNER_STAYS_UP, 2, ("a",)),
    ]


def test_a_finished_run_does_not_need_its_banner() -> None:
    h = (
        History()
        .add("a", "mark", held(), result=MarkResult(True))
        .add("a", "crash", held(), finished="crashed")
        .add("b", "set_collection_error", NO_MARKER)
    )
    assert [v.invariant for v in check(h.events).violations] == [NO_FOREIGN_CLEAR]


def test_taking_over_a_stale_marker_is_the_designed_recovery() -> None:
    six = timedelta(minutes=6)
    h = (
        History()
        .add("a", "mark", held("t1"), result=MarkResult(True, "t1"))
        .add("b", "mark", held("t2", six), at=six, result=MarkResult(True, "t2"))
        .add("a", "clear", held("t2", six), at=six)
    )
    checker = check(h.events)
    assert checker.violations == []
    assert checker.notes == ["a", "b", "b"]


def test_replacing_a_fresh_marker_is_a_foreign_clear() -> None:
    h = (
        History()
        .add("a", "mark", held("t1"), result=MarkResult(True, "t1"))
        .add(
            "b",
            "mark",
            held("t2", timedelta(minutes=4)),
            at=timedelta(minutes=4),
            result=MarkResult(True, "t2"),
        )
    )
    assert check(h.events).violations[0].invariant == NO_FOREIGN_CLEAR


def test_the_token_passes_to_the_invocation_that_takes_the_lock() -> None:
    h = (
        History()
        .add("user", "mark", held("t"), result=MarkResult(True, "t"))
        .add("user", "invoke", held("t"), finished="202")
        .add("first", "receive", held("t"), result="t")
        .add("first", "try_task_lock", held("t"), result=True)
        .add("second", "receive", held("t"), result="t")
        .add("second", "try_task_lock", held("t"), result=False)
        .add("second", "clear", NO_MARKER)
    )
    checker = check(h.events, actors=ASYNC[:3])
    assert checker.notes[3] == "first"
    assert next((v.invariant, v.runs) for v in checker.violations) == (
        NO_FOREIGN_CLEAR,
        ("second", "first"),
    )


def test_a_delegate_may_release_the_marker_no_one_collects_under() -> None:
    h = (
        History()
        .add("user", "mark", held("t"), result=MarkResult(True, "t"))
        .add("user", "invoke", held("t"), finished="202")
        .add("bg", "receive", held("t"), result="t")
        .add("bg", "clear", NO_MARKER, finished="skipped")
    )
    assert check(h.events, actors=(ASYNC[0], ASYNC[3])).violations == []


def test_model_agreement_compares_results_and_errors() -> None:
    h = (
        History()
        .add("a", "mark", held("t"), result=MarkResult(True, "t"), model=MarkResult(True, "t"))
        .add("a", "clear", held("t"), result=None, model=None)
        .add(
            "a",
            "clear",
            held("t"),
            error="StoreInputError: x",
            model=None,
            model_error="OtherError",
        )
    )
    found = check(h.events, compare_model=True).violations
    assert [(v.invariant, v.seq) for v in found] == [(MODEL_AGREEMENT, 2)]


def test_causes_keep_two_foreign_clears_apart() -> None:
    by_clear = (
        History().add("a", "mark", held(), result=MarkResult(True)).add("b", "clear", NO_MARKER)
    )
    by_error = (
        History()
        .add("a", "mark", held(), result=MarkResult(True))
        .add("b", "set_collection_error", NO_MARKER)
    )
    [first, _] = check(by_clear.events).violations
    [second, _] = check(by_error.events).violations
    assert first.invariant == second.invariant == NO_FOREIGN_CLEAR
    assert first.key == "no-foreign-clear/cleared-by-clear"
    assert second.key == "no-foreign-clear/cleared-by-set_collection_error"
