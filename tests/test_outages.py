"""Database faults during a run: terminated backends, a server restart, a lost monitor."""

from __future__ import annotations

from pathlib import Path

import pytest

from racesim.engine.loop import Options, execute
from racesim.errors import HarnessError, InputError
from racesim.formats.scenario import load
from racesim.model.plan import Actor, Outage, Plan, Step
from racesim.provision.databases import Databases
from racesim.runner import run_one
from racesim.store.system import SYSTEM

ROOT = Path(__file__).parent.parent


def test_terminated_actor_crashes_without_its_deferred_clear(conninfo: str) -> None:
    plan = Plan(
        actors=(Actor("cron", "cron"), Actor("page", "poll", {"polls": 1})),
        entries=(
            Step("cron", "mark"),
            Step("cron", "collect"),
            Outage("terminate", "cron"),
            Step("page", "get_freshness"),
        ),
    )
    out = execute(plan, "token", conninfo)
    crash = next(e for e in out.history.events if e.kind == "outage")
    assert crash.finished == "crashed: backend terminated"
    last = out.history.events[-1]
    assert last.state is not None and last.state.is_set  # nobody cleared it
    assert not out.checker.violations


def test_terminated_while_blocked(conninfo: str) -> None:
    plan = Plan(
        actors=(Actor("ops", "locker", {"hold": "row"}), Actor("user", "refresh")),
        entries=(
            Step("ops", "begin"),
            Step("ops", "lock_row"),
            Step("user", "get_freshness"),
            Step("user", "mark"),
            Outage("terminate", "user"),
            Step("ops", "commit"),
        ),
    )
    out = execute(plan, "token", conninfo)
    kinds = [(e.actor, e.call, e.kind) for e in out.history.events]
    assert ("user", "mark", "wait") in kinds
    done = next(e for e in out.history.events if e.actor == "user" and e.kind == "done")
    assert done.error and done.sqlstate == "57P01"  # admin_shutdown
    commit = next(e for e in out.history.events if e.call == "commit")
    assert commit.finished == "committed"
    assert commit.state is not None and not commit.state.is_set  # the mark never happened


def test_terminating_a_lock_holder_releases_its_advisory_lock(conninfo: str) -> None:
    plan = Plan(
        actors=(
            Actor("a", "locker", {"hold": "advisory"}),
            Actor("b", "locker", {"hold": "advisory"}),
        ),
        entries=(
            Step("a", "begin"),
            Step("a", "lock_advisory"),
            Step("b", "begin"),
            Step("b", "lock_advisory"),
            Outage("terminate", "a"),
            Step("b", "commit"),
        ),
    )
    out = execute(plan, "token", conninfo)
    b_done = next(e for e in out.history.events if e.actor == "b" and e.kind == "done")
    assert b_done.error is None  # a's death let b's lock through
    assert out.history.events[-1].finished == "committed"


def test_lost_monitor_stops_the_run_with_a_clear_error(conninfo: str) -> None:
    plan = Plan(
        actors=(Actor("user", "refresh"),),
        entries=(
            Step("user", "get_freshness"),
            Outage("terminate", "monitor"),
            Step("user", "mark"),
        ),
    )
    with pytest.raises(HarnessError, match=r"monitor session was lost.*nothing after"):
        execute(plan, "token", conninfo)


def test_restart_needs_a_local_cluster(conninfo: str) -> None:
    plan = Plan(
        actors=(Actor("user", "refresh"),),
        entries=(Step("user", "get_freshness"), Outage("restart", "server", line=4)),
    )
    with pytest.raises(InputError, match="line 4: 'restart server' needs"):
        execute(plan, "token", conninfo)


@pytest.mark.parametrize("store", ["legacy", "token"])
def test_server_restart_scenario(store: str, databases: Databases) -> None:
    scenario = load(ROOT / "scenarios" / "server-restart.toml")
    result = run_one(scenario, store, databases, Options())
    assert result.verdict.matches, result.verdict.summary
    events = result.outcome.history.events
    crashed = [e.actor for e in events if e.finished == "crashed: server restarted"]
    reconnected = [e.actor for e in events if e.result == "reconnected"]
    assert crashed == ["user"]
    assert sorted(reconnected) == ["cron", "later", "page"]
    # no step counted twice: every call of the user run appears once
    user_calls = [e.call for e in events if e.actor == "user" and e.kind == "step"]
    assert user_calls == ["get_freshness", "mark", "collect"]


def test_lost_monitor_exits_4_from_the_command_line(
    tmp_path: Path, pg_server: object, capsys: pytest.CaptureFixture[str]
) -> None:
    from racesim.cli.main import main
    from racesim.provision.provide import Server

    assert isinstance(pg_server, Server)
    scenario = tmp_path / "monitor.toml"
    scenario.write_text(
        'stores = ["token"]\nschedule = ["T+0 user: get_freshness", "T+1 terminate monitor",'
        ' "T+2 user: mark"]\n\n[actors]\nuser = { program = "refresh" }\n\n'
        '[expect]\ntoken = "holds"\n'
    )
    assert main(["run", str(scenario), "--dsn", pg_server.conninfo()]) == 4
    captured = capsys.readouterr()
    assert "monitor session was lost" in captured.err
    assert "matched" not in captured.out  # nothing is reported as passing


def test_server_restart_with_pooled_sessions(databases: Databases) -> None:
    """Runs that reconnect after a restart keep working sessions, and the pool after."""
    from racesim.engine.pool import SessionPool

    scenario = load(ROOT / "scenarios" / "server-restart.toml")
    name = databases.create()
    try:
        with SessionPool(databases.server.conninfo(name), "token", SYSTEM) as pool:
            for _ in range(2):  # the second run reuses what the first left
                out = execute(
                    scenario.plan,
                    "token",
                    options=Options(),
                    pool=pool,
                    restart_server=databases.server.restart,
                )
                later = [e for e in out.history.events if e.actor == "later" and e.kind == "step"]
                assert [e.error for e in later] == [None] * 4
                assert out.checker.violations == []
    finally:
        databases.drop(name)


def _crash_then_lock_plan() -> Plan:
    """Copy one takes the task lock and crashes; copy two asks for the lock at once."""
    return Plan(
        actors=(
            Actor("user", "refresh", {"mode": "async"}),
            Actor("bg1", "background", {"invoked_by": "user"}, frozenset({"crash_before_clear"})),
            Actor("bg2", "background", {"invoked_by": "user"}),
        ),
        entries=(
            Step("user", "get_freshness"),
            Step("user", "mark"),
            Step("user", "invoke"),
            Step("bg1", "receive"),
            Step("bg1", "try_task_lock"),
            Step("bg1", "collect"),
            Step("bg1", "upsert_recommendations"),
            Step("bg1", "crash"),
            Step("bg2", "receive"),
            Step("bg2", "try_task_lock"),
        ),
    )


def test_a_crash_step_ends_only_once_the_backend_is_gone(conninfo: str) -> None:
    # The advisory lock of a crashed session is released only when its backend
    # exits; a crash step that returned before that let the next run see it held.
    from racesim.engine.loop import Engine
    from racesim.engine.pool import SessionPool

    with SessionPool(conninfo, "token", SYSTEM) as pool:
        for _ in range(40):
            engine = Engine(
                _crash_then_lock_plan(), "token", conninfo, Options(), pool, system=SYSTEM
            )
            try:
                engine.open()
                pid = engine.runs["bg1"].pid
                for entry in engine.plan.entries[:8]:
                    engine.take(entry)
                assert engine.runs["bg1"].closed
                gone = pool.monitor.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,)
                ).fetchone()
                assert gone == (0,), "the crash step returned while its backend still ran"
                for entry in engine.plan.entries[8:]:
                    engine.take(entry)
                got = engine.history.events[-1]
                assert got.call == "try_task_lock" and got.result is True
                assert not engine.checker.violations
            finally:
                engine.close()
