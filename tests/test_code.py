"""racesim.code: plain functions raced statement by statement, on real PostgreSQL."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import code_bank
import pytest
from code_bank import SYSTEM, transfer
from spec_support import Target, target15

import racesim.code as rc
from racesim.cli.main import main
from racesim.engine.loop import execute
from racesim.engine.pool import SessionPool
from racesim.errors import InputError
from racesim.explore.search import exhaustive
from racesim.model.plan import Actor, Plan, Step
from racesim.provision.provide import Server
from racesim.runner import Prepared

__all__ = ["target15"]


def explore(server: Server, tmp_path: Path, store: str, strategy: str, *more: str) -> int:
    return main(
        [
            "explore",
            "--system",
            "code_bank:SYSTEM",
            "--store",
            store,
            "--strategy",
            strategy,
            "--out",
            str(tmp_path),
            "--dsn",
            server.conninfo(),
            *more,
        ]
    )


@pytest.mark.parametrize("strategy", ["exhaustive", "hypothesis", "pct"])
def test_every_strategy_finds_the_lost_update(
    pg_server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str], strategy: str
) -> None:
    assert explore(pg_server, tmp_path, "lost-update", strategy) == 1
    out = capsys.readouterr().out
    assert "found 1 violation(s) (money is conserved)" in out
    (saved,) = tmp_path.glob("*.toml")
    text = saved.read_text()
    assert 'alice = { program = "main", args = [1, 2, 30], statements = ["BEGIN", ' in text
    assert (
        main(["replay", str(saved), "--system", "code_bank:SYSTEM", "--dsn", pg_server.conninfo()])
        == 1
    )
    assert "reproduced: money is conserved" in capsys.readouterr().out


def test_for_update_holds_on_every_interleaving(
    pg_server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert explore(pg_server, tmp_path, "for-update", "exhaustive") == 0
    assert "distinct schedules explored, none violates" in capsys.readouterr().out


def two(*steps: str) -> Plan:
    actors = (
        Actor("alice", "main", {"args": [1, 2, 30]}),
        Actor("bob", "main", {"args": [1, 2, 50]}),
    )
    return Plan(actors, tuple(Step(s.split(":")[0], s.split(":")[1]) for s in steps))


@pytest.fixture
def bank(pg_server: Server, racesim_prepared: Prepared) -> Iterator[str]:
    """A fresh database of the bank system: its conninfo."""
    dbs = racesim_prepared.for_system(SYSTEM)
    name = dbs.create()
    yield pg_server.conninfo(name)
    dbs.drop(name)


def test_a_lock_wait_is_a_waiting_step_and_the_function_results_are_answers(bank: str) -> None:
    conninfo = bank
    plan = two(
        *("alice:s1", "alice:s2", "bob:s1", "bob:s2", "alice:s3", "alice:s4", "alice:s5"),
        *("bob:s3", "bob:s4", "bob:s5"),
    )
    history = execute(plan, "for-update", conninfo, system=SYSTEM).history
    kinds = [(e.kind, e.actor, e.call) for e in history.events]
    assert ("wait", "bob", "s2") in kinds  # SELECT ... FOR UPDATE waits on alice's row lock
    done = next(e for e in history.events if e.kind == "done" and e.actor == "bob")
    assert done.sent == ("SELECT balance FROM accounts WHERE id = 1 FOR UPDATE",)
    finished = {e.actor: e.finished for e in history.events if e.finished}
    assert finished == {"alice": "'done'", "bob": "'done'"}
    assert history.events[-1].state[0] == ("1|20", "2|180")
    source = Path(code_bank.__file__).read_text().splitlines()
    sent_at = next(i for i, line in enumerate(source, 1) if "FOR UPDATE" in line) - 1
    assert done.args == (f"tests/code_bank.py:{sent_at}",)  # the line of the execute call


def test_a_run_stopped_inside_a_transaction_leaves_no_lock(bank: str) -> None:
    with SessionPool(bank, "for-update", SYSTEM) as pool:
        first = execute(two("alice:s1", "alice:s2"), "for-update", pool=pool, system=SYSTEM)
        assert [e.kind for e in first.history.events] == ["step", "step"]
        # alice's session held the row lock when the run ended; bob's run does not wait
        plan = two("bob:s1", "bob:s2", "bob:s3", "bob:s4", "bob:s5")
        events = execute(plan, "for-update", pool=pool, system=SYSTEM).history.events
        assert [e.kind for e in events] == ["step"] * 5
        assert events[-1].finished == "'done'"
        row = pool.monitor.execute("SELECT balance FROM accounts WHERE id = 1").fetchone()
        assert row == (50,)


def test_arguments_that_do_not_fit_are_refused() -> None:
    with pytest.raises(InputError, match=r"transfer\(conn, src, dst, amount\) .* cannot take"):
        rc.system("x", variants={"v": transfer}, actors={"a": rc.call(1, 2)}, invariants={})
    with pytest.raises(InputError, match="not a query or a function"):
        rc.system("x", variants={"v": transfer}, actors={}, invariants={"i": 5})  # type: ignore[dict-item]
    with pytest.raises(InputError, match="cannot be saved in a scenario"):
        rc.system(
            "x", variants={"v": transfer}, actors={"a": rc.call(object(), 2, 3)}, invariants={}
        )


@pytest.mark.parametrize(
    ("system", "message"),
    [
        ("code_bank:SILENT", "without sending a statement on the connection racesim gave it"),
        ("code_bank:NOT_A_QUERY", "invariant 'wipes' is not a read-only query"),
        ("code_bank:MISSING", "cannot load 'code_bank:MISSING'"),
        ("no_such_module:SYSTEM", "cannot load 'no_such_module:SYSTEM'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    pg_server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str], system: str, message: str
) -> None:
    argv = ["explore", "--system", system, "--store", "only", "--strategy", "exhaustive"]
    assert main([*argv, "--out", str(tmp_path), "--dsn", pg_server.conninfo()]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize(
    ("system", "race", "fix", "invariant"),
    [
        ("code_shop:SHOP", "orm", "orm-for-update", "never oversold"),
        ("code_shop:ASYNC_BANK", "read-then-write", "for-update", "money is conserved"),
    ],
)
def test_sqlalchemy_orm_and_async_functions_race_the_same_way(
    pg_server: Server,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    system: str,
    race: str,
    fix: str,
    invariant: str,
) -> None:
    argv = ["explore", "--system", system, "--strategy", "exhaustive", "--out", str(tmp_path)]
    dsn = ["--dsn", pg_server.conninfo()]
    assert main([*argv, "--store", race, *dsn]) == 1
    out = capsys.readouterr().out
    assert f"found 1 violation(s) ({invariant})" in out
    assert "code_shop.py:" in out  # each step with the user's own line
    assert main([*argv, "--store", fix, *dsn]) == 0
    assert "none violates" in capsys.readouterr().out


def test_the_counterexample_exports_a_spec_isolationtester_reproduces(
    target15: Target, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["explore", "--system", "code_bank:SYSTEM", "--store", "lost-update"]
    more = ["--strategy", "exhaustive", "--export-spec", "--out", str(tmp_path)]
    assert main([*argv, *more, "--dsn", target15.dbs.server.conninfo()]) == 1
    capsys.readouterr()
    (spec,) = tmp_path.glob("*.spec")
    text = spec.read_text()
    assert "SELECT balance FROM accounts WHERE id = 1" in text
    status, output = target15.reference(spec)
    assert status == 0, output.decode()
    # the real isolationtester ends where racesim did: bob's write won, 30 went missing
    last_watch = output.decode().rsplit("step watch", 1)[1]
    assert re.search(r"^ +1\|\s*50$", last_watch, re.M) and re.search(
        r"^ +2\|\s*180$", last_watch, re.M
    ), last_watch


def test_a_replay_of_changed_code_shows_both_statement_lists(
    pg_server: Server,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source = Path(code_bank.__file__).read_text()
    module = tmp_path / "changing_bank.py"
    module.write_text(source)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    dsn = ["--dsn", pg_server.conninfo()]
    argv = ["--system", "changing_bank:SYSTEM"]
    explore = ["explore", *argv, "--store", "lost-update", "--strategy", "exhaustive"]
    assert main([*explore, "--out", "found", *dsn]) == 1
    (saved,) = (tmp_path / "found").glob("*.toml")
    assert '"SELECT balance FROM accounts WHERE id = 1"' in saved.read_text()
    assert main(["replay", *argv, str(saved), *dsn]) == 1
    capsys.readouterr()
    module.write_text(
        source.replace('WHERE id = %s", (balance', 'WHERE id = %s AND true", (balance')
    )
    monkeypatch.delitem(sys.modules, "changing_bank")
    assert main(["replay", *argv, str(saved), *dsn]) == 2
    captured = capsys.readouterr()
    assert "reproduced" not in captured.out
    (line,) = captured.err.strip().splitlines()
    assert "actor alice does not send the statements saved with this run" in line
    assert '"UPDATE accounts SET balance = 70 WHERE id = 1"' in line  # saved
    assert '"UPDATE accounts SET balance = 70 WHERE id = 1 AND true"' in line  # now


def test_bench_code_prints_the_ratio(pg_server: Server, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "code", "--repeat", "3", "--dsn", pg_server.conninfo()]) == 0
    out = capsys.readouterr().out
    rates = re.findall(r"^  (functions|program) +([0-9.]+) schedules/s", out, re.M)
    assert [name for name, _ in rates] == ["functions", "program"]
    assert all(float(rate) > 0 for _, rate in rates)
    assert re.search(r"^  ratio +[0-9.]+  \(target >= 0\.7\) (ok|MISSED)$", out, re.M)


def test_a_connection_racesim_did_not_make_is_told_once(
    pg_server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["explore", "--system", "code_bank:ASIDE", "--store", "only", "--strategy"]
    assert main([*argv, "exhaustive", "--out", str(tmp_path), "--dsn", pg_server.conninfo()]) == 0
    notes = [
        line for line in capsys.readouterr().err.splitlines() if "racesim did not make" in line
    ]
    assert len(notes) == 1 and notes[0].startswith("racesim: note: the function opens")
    assert "tests/code_bank.py:" in notes[0]  # the line that opened it


SCENARIO = """
system = "code_bank:SYSTEM"
name = "both transfers read 100"
stores = ["lost-update", "for-update"]
schedule = [
  "T+0 alice: s1", "T+1 alice: s2", "T+2 bob: s1", "T+3 bob: s2",
  "T+4 alice: s3", "T+5 alice: s4", "T+6 alice: s5",
  "T+7 bob: s3", "T+8 bob: s4", "T+9 bob: s5",
]

[actors]
alice = { program = "main", args = [1, 2, 30] }
bob = { program = "main", args = [1, 2, 50] }

[expect]
lost-update = { breaks = "money is conserved", at = "T+9" }
for-update = "holds"
"""


def test_scenario_files_and_plans_in_pytest(race: Any, tmp_path: Path) -> None:
    path = tmp_path / "both-read.toml"
    path.write_text(SCENARIO)
    assert race(path, store="lost-update", system=SYSTEM).verdict.matches
    # With FOR UPDATE, bob's read (s2) waits for alice's commit: the schedule names it
    # again only where it has completed, so the same file holds.
    held = race(path, store="for-update", system=SYSTEM)
    assert held.verdict.matches
    assert any(e.kind == "wait" and e.actor == "bob" for e in held.outcome.history.events)
    plan = Plan(
        (Actor("alice", "main", {"args": [1, 2, 30]}),),
        tuple(Step("alice", f"s{i}") for i in range(1, 6)),
    )
    assert not race(plan, store="lost-update", system=SYSTEM).verdict.violations


def test_every_kind_of_statement_is_one_step(bank: str, racesim_prepared: Prepared) -> None:
    dbs = racesim_prepared.for_system(code_bank.KINDS)
    name = dbs.create()
    conninfo = bank.replace(bank.split("dbname=")[1].split()[0], name)
    plan = Plan(
        (Actor("alice", "main", {"args": []}),), tuple(Step("alice", f"s{i}") for i in range(1, 10))
    )
    try:
        events = execute(plan, "only", conninfo, system=code_bank.KINDS).history.events
    finally:
        dbs.drop(name)
    assert [(e.call, e.sql, e.result) for e in events] == [
        (
            "s1",
            "BEGIN; UPDATE accounts SET balance = balance WHERE id = 1;"
            " UPDATE accounts SET balance = balance WHERE id = 2",
            "UPDATE 1",
        ),
        ("s2", "COMMIT", "COMMIT"),
        ("s3", "BEGIN; COPY accounts (id, balance) FROM STDIN", "COPY"),
        ("s4", "ROLLBACK", "ROLLBACK"),
        (
            "s5",
            "BEGIN; DECLARE named CURSOR FOR SELECT id FROM accounts ORDER BY id",
            "DECLARE",
        ),
        ("s6", "FETCH FORWARD 1 FROM named", "FETCH"),
        ("s7", "CLOSE named", "CLOSE"),
        ("s8", "SELECT id FROM accounts ORDER BY id", "SELECT"),
        ("s9", "COMMIT", "COMMIT"),
    ]
    assert events[-1].finished == "3"
    assert all(e.args[0].startswith("tests/code_bank.py:") for e in events)


def test_statement_footprints_prune_reorderings_and_keep_every_finding(bank: str) -> None:
    actors = SYSTEM.config(None, "exhaustive").roster()
    runs = {}
    for store in ("lost-update", "for-update"):
        for reduce in (True, False):
            with SessionPool(bank, store, SYSTEM) as pool:
                runs[store, reduce] = exhaustive(
                    actors, store, pool=pool, reduce=reduce, system=SYSTEM
                )
    assert set(runs["lost-update", True].found) == set(runs["lost-update", False].found) != set()
    held, every = runs["for-update", True], runs["for-update", False]
    assert held.complete and every.complete and not held.found and not every.found
    assert held.explored < every.explored and held.skipped > 0


def test_json_lines_and_scenario_arguments(
    pg_server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "both-read.toml"
    path.write_text(SCENARIO)
    dsn = ["--dsn", pg_server.conninfo()]
    run = ["run", "--json", "--system", "code_bank:SYSTEM", "--store", "lost-update"]
    assert main([*run, str(path), *dsn]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    second = next(e for e in events if e.get("type") == "event" and e["call"] == "s2")
    assert second["sql"] == "SELECT balance FROM accounts WHERE id = 1"
    assert second["args"][0] == "tests/code_bank.py:8"  # the execute of the SELECT
    path.write_text(SCENARIO.replace("args = [1, 2, 30]", "args = [1, 2]"))
    assert main([*run, str(path), *dsn]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "both-read.toml:12: actor alice: transfer(conn, src, dst, amount)" in line
    assert "missing a required argument: 'amount'" in line


def test_roles_and_a_python_invariant_of_the_results(
    pg_server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["explore", "--system", "code_bank:ROLES", "--strategy", "exhaustive"]
    dsn = ["--out", str(tmp_path), "--dsn", pg_server.conninfo()]
    assert main([*argv, "--store", "transaction", *dsn]) == 0
    assert "none violates" in capsys.readouterr().out
    assert main([*argv, "--store", "autocommit", *dsn]) == 1
    out = capsys.readouterr().out
    assert "!! audit sees whole transfers: the auditor saw 230" in out


def test_a_deadlock_is_the_closing_steps_error_and_its_functions_exception(bank: str) -> None:
    actors = (
        Actor("alice", "main", {"args": [1, 2, 30]}),
        Actor("bob", "main", {"args": [2, 1, 50]}),
    )
    steps = ("alice:s1", "alice:s2", "bob:s1", "bob:s2", "alice:s3", "bob:s3")
    steps += ("alice:s4", "bob:s4", "bob:s4", "bob:s5", "alice:s5")
    plan = Plan(actors, tuple(Step(*s.split(":")) for s in steps))
    events = execute(plan, "for-update", bank, system=SYSTEM).history.events
    (victim,) = [e for e in events if e.sqlstate == "40P01"]
    assert (victim.actor, victim.call) == ("bob", "s4")
    assert victim.sql == "UPDATE accounts SET balance = balance + 50 WHERE id = 1"
    ends = {e.actor: e.finished for e in events if e.finished}
    assert ends["bob"].startswith("raised DeadlockDetected")
    rollback = next(e for e in events if e.actor == "bob" and e.call == "s5")
    assert rollback.sql == "ROLLBACK" and ends["alice"] == "'done'"
