"""The job queue's invariants on hand-made histories: each fires exactly when it should."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from racesim.engine.clock import EPOCH
from racesim.model.history import Event
from racesim.systems.jobqueue.interface import LEASE, Claimed
from racesim.systems.jobqueue.invariants import (
    NO_LOST_JOB,
    ONE_HOLDER,
    PROCESSED_ONCE,
    QueueChecker,
    check,
)

MICRO = timedelta(microseconds=1)


class History:
    """Builds events in order, each at the virtual time given (seconds after EPOCH)."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def add(
        self,
        actor: str,
        call: str,
        result: Any = None,
        *,
        args: tuple[Any, ...] = (),
        at: timedelta = timedelta(0),
        kind: str = "step",
        error: str | None = None,
    ) -> History:
        self.events.append(
            Event(
                seq=len(self.events),
                kind=kind,  # type: ignore[arg-type]
                actor=actor,
                call=call,
                label=f"T+{len(self.events)}",
                args=args,
                result=result,
                error=error,
                vtime=EPOCH + at,
            )
        )
        return self


def names(checker: QueueChecker) -> list[tuple[str, int]]:
    return [(v.invariant, v.seq) for v in checker.violations]


def one_job() -> History:
    return History().add("producer", "enqueue", 1, args=("job-1",))


def test_one_worker_start_to_finish_breaks_nothing() -> None:
    h = one_job()
    h.add("w1", "find", 1).add("w1", "claim", Claimed(1, 1), args=(1,))
    h.add("w1", "process", True, args=(1, 1)).add("w1", "find", None)
    checker = check(h.events)
    assert checker.violations == []
    assert checker.processed == {1: "w1"}


def test_a_second_claim_inside_the_lease_is_a_double_claim() -> None:
    h = one_job()
    h.add("w1", "find", 1).add("w2", "find", 1)
    h.add("w1", "claim", Claimed(1, 1), args=(1,))
    h.add("w2", "claim", Claimed(1, 2), args=(1,), at=LEASE - MICRO)
    checker = check(h.events)
    assert names(checker) == [(ONE_HOLDER, 4)]
    v = checker.violations[0]
    assert v.runs == ("w2", "w1")
    assert v.key == "one-holder/claimed-while-held"
    assert v.message == "w2 claimed job 1 while w1 holds it (lease until 12:00:30)"
    assert checker.note() == "w1 #1, w2 #1"


def test_a_claim_once_the_lease_ran_out_is_the_designed_takeover() -> None:
    h = one_job()
    h.add("w1", "claim", Claimed(1, 1), args=(1,))
    h.add("w1", "crash")
    h.add("w2", "claim", Claimed(1, 2), args=(1,), at=LEASE)
    h.add("w2", "process", True, args=(1, 2), at=LEASE)
    checker = check(h.events)
    assert checker.violations == []


def test_claiming_a_processed_job_breaks_one_holder_and_processing_it_again_processed_once() -> (
    None
):
    h = one_job()
    h.add("w1", "find", 1).add("w2", "find", 1)
    h.add("w1", "claim", Claimed(1, 1), args=(1,)).add("w1", "process", True, args=(1, 1))
    h.add("w2", "claim", Claimed(1, 2), args=(1,)).add("w2", "process", True, args=(1, 2))
    checker = check(h.events)
    assert names(checker) == [(ONE_HOLDER, 5), (PROCESSED_ONCE, 6)]
    assert checker.violations[0].key == "one-holder/claimed-when-done"
    assert checker.violations[0].message == "w2 claimed job 1, which w1 has processed"
    assert checker.violations[1].message == "job 1 processed twice: by w1, then by w2"


def test_a_refused_processing_gives_up_the_claim() -> None:
    h = one_job()
    h.add("w1", "claim", Claimed(1, 1), args=(1,))
    h.add("w2", "claim", Claimed(1, 2), args=(1,), at=LEASE)
    h.add("w1", "process", False, args=(1, 1), at=LEASE)
    checker = check(h.events)
    assert checker.violations == []
    assert [x.run for x in checker.holds[1]] == ["w2"]
    assert checker.note() == "w2 #1"


def test_finding_the_queue_empty_while_a_job_waits_is_a_lost_job() -> None:
    h = one_job().add("w1", "find", None)
    checker = check(h.events)
    assert names(checker) == [(NO_LOST_JOB, 1)]
    assert checker.violations[0].message == (
        "w1 found the queue empty, but job 1 is waiting (it was never claimed)"
    )


def test_a_crashed_holders_job_must_be_found_once_its_lease_ran_out() -> None:
    h = one_job()
    h.add("w1", "claim", Claimed(1, 1), args=(1,)).add("w1", "crash")
    h.add("w2", "find", None, at=LEASE - MICRO)  # still held: not lost
    h.add("w2", "find", None, at=LEASE)  # the lease ran out: the job must be found
    h.add("w3", "find", None, at=LEASE + MICRO)  # the same loss is reported once
    checker = check(h.events)
    assert names(checker) == [(NO_LOST_JOB, 4)]
    assert checker.violations[0].runs == ("w2", "w1")
    assert checker.violations[0].key == "no-lost-job/lease-ran-out"
    assert "the lease of w1 ran out at 12:00:30" in checker.violations[0].message


def test_a_claim_that_waited_holds_from_when_it_was_sent() -> None:
    """NOW() of a statement is when it started: a claim blocked across a clock move
    holds its lease from the time it was sent."""
    h = one_job()
    h.add("w1", "claim", kind="wait", args=(1,))
    h.add("w1", "claim", Claimed(1, 1), args=(1,), kind="done", at=timedelta(seconds=20))
    h.add("w2", "find", None, at=LEASE)
    checker = check(h.events)
    assert names(checker) == [(NO_LOST_JOB, 3)]


def test_failed_calls_change_nothing() -> None:
    h = one_job()
    h.add("w1", "claim", None, args=(1,), error="OperationalError: gone")
    h.add("w1", "process", None, args=(1, 1), error="OperationalError: gone")
    checker = check(h.events)
    assert checker.holds == {} and checker.processed == {}
