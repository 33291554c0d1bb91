"""The engine against real PostgreSQL: ordering, blocking, deadlocks, stuck schedules."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from racesim.engine.loop import Options, execute
from racesim.errors import InputError
from racesim.model.plan import Actor, ClockMove, Plan, Step


def plan(actors: list[Actor], steps: list[Step | ClockMove]) -> Plan:
    return Plan(actors=tuple(actors), entries=tuple(steps))


def test_blocked_row_lock_is_seen_and_completes_after_commit(conninfo: str) -> None:
    p = plan(
        [Actor("ops", "locker", {"hold": "row"}), Actor("user", "refresh")],
        [
            Step("ops", "begin"),
            Step("ops", "lock_row"),
            Step("user", "get_freshness"),
            Step("user", "mark", "T+1"),
            Step("ops", "commit", "T+2"),
        ],
    )
    out = execute(p, "token", conninfo)
    kinds = [(e.actor, e.call, e.kind) for e in out.history.events]
    assert ("user", "mark", "wait") in kinds
    waited = kinds.index(("user", "mark", "wait"))
    done = kinds.index(("user", "mark", "done"))
    commit = kinds.index(("ops", "commit", "step"))
    assert waited < commit < done
    mark_done = out.history.events[done]
    assert mark_done.result.ok and mark_done.state is not None and mark_done.state.is_set
    assert not out.checker.violations


def test_blocked_step_is_noticed_within_milliseconds(conninfo: str) -> None:
    p = plan(
        [Actor("a", "locker", {"hold": "advisory"}), Actor("b", "locker", {"hold": "advisory"})],
        [
            Step("a", "begin"),
            Step("a", "lock_advisory"),
            Step("b", "begin"),
            Step("b", "lock_advisory"),
            Step("a", "commit"),
        ],
    )
    out = execute(p, "token", conninfo)
    events = out.history.events
    wait = next(e for e in events if e.kind == "wait")
    before = events[wait.seq - 1]
    assert wait.actor == "b" and wait.call == "lock_advisory"
    # the wait is recorded a few polls after the previous event, not after a timeout
    assert wait.wall - before.wall < 0.25
    done = next(e for e in events if e.kind == "done")
    assert done.actor == "b" and done.error is None


def test_deadlock_is_an_outcome_not_a_crash(conninfo: str) -> None:
    p = plan(
        [
            Actor("a", "locker", {"hold": "row+advisory"}),
            Actor("b", "locker", {"hold": "advisory+row"}),
        ],
        [
            Step("a", "begin"),
            Step("a", "lock_row"),
            Step("b", "begin"),
            Step("b", "lock_advisory"),
            Step("a", "lock_advisory"),
            Step("b", "lock_row"),
            Step("a"),  # wait for a's pending step: the deadlock resolves one way or the other
            Step("a"),
            Step("b"),
        ],
    )
    out = execute(p, "token", conninfo)
    errors = [e for e in out.history.events if e.sqlstate == "40P01"]
    assert len(errors) == 1, [(e.actor, e.call, e.kind, e.error) for e in out.history.events]
    assert "DeadlockDetected" in (errors[0].error or "")
    # The step that closed the cycle is the victim, every time: a's wait was given
    # its own deadlock check before b's step was sent.
    assert (errors[0].actor, errors[0].call) == ("b", "lock_row")
    finished = {e.actor: e.finished for e in out.history.events if e.finished}
    assert finished == {"a": "committed", "b": "rolled back after DeadlockDetected"}
    assert out.history.stuck is None


def test_lock_timeout_is_recorded(conninfo: str) -> None:
    p = plan(
        [Actor("ops", "locker", {"hold": "row"}), Actor("user", "refresh", {"lock_timeout": 30})],
        [
            Step("ops", "begin"),
            Step("ops", "lock_row"),
            Step("user", "get_freshness"),
            Step("user", "mark"),
            Step("user", "mark"),
            Step("ops", "commit"),
        ],
    )
    out = execute(p, "token", conninfo)
    mark = [e for e in out.history.events if e.actor == "user" and e.call == "mark"]
    assert mark[-1].sqlstate == "55P03"  # lock_not_available
    assert mark[-1].finished and "LockNotAvailable" in mark[-1].finished


def test_schedule_that_can_never_finish_is_reported(conninfo: str) -> None:
    p = plan(
        [Actor("ops", "locker", {"hold": "row"}), Actor("user", "refresh")],
        [
            Step("ops", "begin"),
            Step("ops", "lock_row"),
            Step("user", "get_freshness"),
            Step("user", "mark"),
            Step("user", "mark"),
        ],
    )
    started = time.perf_counter()
    out = execute(p, "token", conninfo, Options(wait_bound=0.3))
    assert out.history.stuck and "never finish" in out.history.stuck
    assert out.history.events[-1].kind == "stuck"
    assert time.perf_counter() - started < 5


def test_declared_call_that_the_program_does_not_make(conninfo: str) -> None:
    p = plan([Actor("user", "refresh")], [Step("user", "mark", line=7)])
    with pytest.raises(InputError, match=r"line 7.*makes get_freshness next"):
        execute(p, "token", conninfo)


def test_step_after_the_run_finished(conninfo: str) -> None:
    p = plan(
        [Actor("page", "poll", {"polls": 1})],
        [Step("page", "get_freshness"), Step("page", "get_freshness", line=3)],
    )
    with pytest.raises(InputError, match=r"line 3.*has finished"):
        execute(p, "model")


def test_clock_moves_are_seen_by_postgres_and_the_model(conninfo: str) -> None:
    actors = [Actor("slow", "cron"), Actor("next", "cron")]
    steps: list[Step | ClockMove] = [
        Step("slow", "mark"),
        ClockMove(timedelta(minutes=6)),
        Step("next", "mark"),
    ]
    for store in ("token", "model"):
        out = execute(plan(actors, steps), store, conninfo if store != "model" else None)
        took = next(e for e in out.history.events if e.actor == "next")
        assert took.result.ok, store
        assert not out.checker.violations  # a stale takeover is the designed recovery


def test_same_plan_same_history(conninfo: str, pg_server: object, databases: object) -> None:
    actors = [Actor("user", "refresh"), Actor("cron", "cron")]
    steps: list[Step | ClockMove] = [
        Step("user"),
        Step("user"),
        Step("cron"),
        Step("cron"),
        Step("cron"),
        Step("cron"),
    ]
    first = execute(plan(actors, steps), "model")
    second = execute(plan(actors, steps), "model")
    strip = lambda out: [(e.actor, e.call, e.result, e.state) for e in out.history.events]  # noqa: E731
    assert strip(first) == strip(second)


def test_locker_steps_show_what_the_statement_returned(conninfo: str) -> None:
    import io
    import json

    from racesim.model.verdict import judge
    from racesim.report.text import Reporter

    p = plan(
        [
            Actor("a", "locker", {"hold": "row+advisory"}),
            Actor("b", "locker", {"hold": "advisory"}),
        ],
        [
            Step("a", "begin"),
            Step("a", "lock_row"),
            Step("a", "lock_advisory"),
            Step("b", "begin"),
            Step("b", "lock_advisory"),
            Step("a", "commit"),
        ],
    )
    out = execute(p, "token", conninfo)
    shown = {(e.actor, e.call, e.kind): e.result for e in out.history.events}
    assert shown[("a", "begin", "step")] == "BEGIN"
    assert shown[("a", "lock_row", "step")] == "SELECT 1: id=1"
    assert shown[("a", "lock_advisory", "step")] == "SELECT 1: pg_advisory_xact_lock=void"
    assert shown[("b", "lock_advisory", "done")] == "SELECT 1: pg_advisory_xact_lock=void"
    assert shown[("a", "commit", "step")] == "COMMIT"
    for as_json in (False, True):
        text = io.StringIO()
        Reporter(text, as_json=as_json).run("locker", "", out, judge(out, None))
        assert "Cursor" not in text.getvalue() and " at 0x" not in text.getvalue()
        assert "lock_row -> SELECT 1: id=1" in text.getvalue() or as_json
    lines = [json.loads(line) for line in text.getvalue().splitlines()]
    assert any(e.get("call") == "commit" and e.get("result") == "COMMIT" for e in lines)


def test_waiting_step_names_its_blocker_and_statement(conninfo: str) -> None:
    p = plan(
        [Actor("ops", "locker", {"hold": "row"}), Actor("user", "refresh")],
        [
            Step("ops", "begin"),
            Step("ops", "lock_row"),
            Step("user", "get_freshness"),
            Step("user", "mark", "T+1"),
            Step("ops", "commit", "T+2"),
        ],
    )
    out = execute(p, "legacy", conninfo)
    wait = next(e for e in out.history.events if e.kind == "wait")
    assert wait.actor == "user" and wait.blocked_by == ("ops",)
    assert wait.sql.startswith("UPDATE recommendations_state SET last_collection_started_at")
    lock = next(e for e in out.history.events if e.call == "lock_row")
    assert "FOR UPDATE" in lock.sql and lock.blocked_by == ()
    done = next(e for e in out.history.events if e.kind == "done")
    assert done.sql == wait.sql  # the completion of the same statement, sent once
