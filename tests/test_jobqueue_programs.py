"""The job queue's programs, stepped by hand: the calls they yield for each answer."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from racesim.system import ProgramRun as Program
from racesim.systems.jobqueue.interface import Claimed
from racesim.systems.jobqueue.programs import PROGRAMS, auditor, producer, worker


@dataclass(frozen=True)
class Ctx:
    options: Mapping[str, Any] = field(default_factory=dict)
    faults: frozenset[str] = frozenset()


def drive(program: Program, answers: list[Any]) -> tuple[list[str], str]:
    """The calls the program makes when each is answered in turn; its final answer."""
    calls = [next(program)]
    try:
        for answer in answers:
            calls.append(program.send(answer))
    except StopIteration as stop:
        return [c.name for c in calls], str(stop.value)
    raise AssertionError(f"program still running after {[c.name for c in calls]}")


def test_producer_enqueues_as_many_jobs_as_asked() -> None:
    program = producer(Ctx({"jobs": 3}))
    first = next(program)
    assert (first.name, first.args) == ("enqueue", ("job-1",))
    assert drive(producer(Ctx({"jobs": 3})), [1, 2, 3]) == (
        ["enqueue", "enqueue", "enqueue"],
        "enqueued 3 job(s)",
    )


def test_worker_finds_claims_and_processes_one_job() -> None:
    calls, answer = drive(worker(Ctx()), [1, Claimed(1, 1), True])
    assert calls == ["find", "claim", "process"]
    assert answer == "processed 1 job(s)"


def test_worker_passes_the_claim_to_process() -> None:
    program = worker(Ctx())
    next(program)
    claim = program.send(4)
    assert (claim.name, claim.args) == ("claim", (4,))
    process = program.send(Claimed(4, 2))
    assert (process.name, process.args) == ("process", (4, 2))


def test_worker_stops_on_an_empty_queue() -> None:
    assert drive(worker(Ctx()), [None]) == (["find"], "queue empty after 0 job(s)")


def test_worker_goes_back_to_find_after_a_lost_claim_or_a_refused_processing() -> None:
    calls, answer = drive(worker(Ctx({"jobs": 2})), [1, None, 1, Claimed(1, 1), False, None])
    assert calls == ["find", "claim", "find", "claim", "process", "find"]
    assert answer == "queue empty after 0 job(s)"


def test_worker_rounds_are_bounded() -> None:
    calls, answer = drive(worker(Ctx()), [1, None, 1, None, 1, None])
    assert calls == ["find", "claim"] * 3
    assert answer == "stopped after 3 rounds, 0 job(s) processed"


def test_crash_mid_job_dies_right_after_the_claim() -> None:
    calls, answer = drive(
        worker(Ctx(faults=frozenset({"crash_mid_job"}))), [1, Claimed(1, 1), None]
    )
    assert calls == ["find", "claim", "crash"]
    assert answer == "crashed holding job 1"


def test_every_call_a_program_makes_is_declared() -> None:
    assert PROGRAMS["worker"].calls == {"find", "claim", "process", "crash"}
    assert PROGRAMS["worker"].faults == {"crash_mid_job"}
    assert PROGRAMS["producer"].calls == {"enqueue"}


def test_auditor_holds_the_first_row_until_it_commits() -> None:
    program = auditor(Ctx())
    begin = next(program)
    lock = program.send(None)
    commit = program.send(None)
    assert [(c.name, c.kind, c.sql) for c in (begin, lock, commit)] == [
        ("begin", "sql", "BEGIN"),
        ("lock_first", "sql", "SELECT id FROM jobs ORDER BY id LIMIT 1 FOR UPDATE"),
        ("commit", "sql", "COMMIT"),
    ]


def test_auditor_rolls_back_when_its_lock_fails() -> None:
    program = auditor(Ctx())
    next(program)
    program.send(None)
    rollback = program.throw(TimeoutError("lock timeout"))
    assert (rollback.name, rollback.sql) == ("rollback", "ROLLBACK")
    try:
        program.send(None)
    except StopIteration as stop:
        assert stop.value == "rolled back after TimeoutError"
