"""racesim.code as its users write functions: savepoints, setup SQL that fails, Python
invariants that try to write, on real PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from spec_support import Target, target15

import racesim.code as rc
from racesim.cli.main import main
from racesim.code.gate import PYTHON_BOUND
from racesim.code.reduce import Footprints
from racesim.engine.loop import execute
from racesim.engine.pool import SessionPool
from racesim.errors import InputError
from racesim.footprints import schema_of
from racesim.model.plan import Actor, Plan, Step
from racesim.provision.provide import Server
from racesim.runner import Prepared
from racesim.system import System

__all__ = ["target15"]

ACCOUNTS = "CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL)"
FRESH = "DELETE FROM accounts; INSERT INTO accounts VALUES (1, 100), (2, 100)"
CONSERVED = {"money is conserved": "SELECT 1 FROM accounts HAVING sum(balance) <> 200"}


def fee_with_savepoint(conn: Any, src: int, amount: int) -> str:
    """Tries a fee in a savepoint; the fee fails and only its savepoint is rolled back."""
    with conn.transaction():
        conn.execute("UPDATE accounts SET balance = balance - %s WHERE id = %s", (amount, src))
        try:
            with conn.transaction():
                conn.execute("UPDATE accounts SET balance = balance / 0 WHERE id = %s", (src,))
        except psycopg.errors.DivisionByZero:
            pass
        conn.execute("UPDATE accounts SET balance = balance + %s WHERE id = 2", (amount,))
    return "done"


SAVEPOINTS = rc.system(
    "savepoints",
    schema=ACCOUNTS,
    fresh=FRESH,
    variants={"only": fee_with_savepoint},
    actors={"alice": rc.call(1, 30)},
    invariants=CONSERVED,
)


def transfer(conn: Any, src: int, dst: int, amount: int) -> str:
    with conn.transaction():
        conn.execute("UPDATE accounts SET balance = balance - %s WHERE id = %s", (amount, src))
        conn.execute("UPDATE accounts SET balance = balance + %s WHERE id = %s", (amount, dst))
    return "done"


BAD_SCHEMA = rc.system(
    "bad-schema",
    schema="CREATE TABLE accounts (id int PRIMARY KEY",
    variants={"only": transfer},
    actors={"alice": rc.call(1, 2, 30)},
    invariants=CONSERVED,
)

BAD_FRESH = rc.system(
    "bad-fresh",
    schema="CREATE TABLE ledger (id int)",
    fresh=FRESH,
    variants={"only": transfer},
    actors={"alice": rc.call(1, 2, 30)},
    invariants=CONSERVED,
)


def wipes_after_commit(conn: Any, results: Any) -> None:
    """Not an invariant: ends its read-only transaction, then writes."""
    conn.execute("COMMIT")
    conn.execute("DELETE FROM accounts")


def commits(conn: Any, results: Any) -> None:
    """Not an invariant: ends its read-only transaction."""
    conn.execute("COMMIT")


WRITING_CHECK = rc.system(
    "writing-check",
    schema=ACCOUNTS,
    fresh=FRESH,
    variants={"wipes": transfer},
    actors={"alice": rc.call(1, 2, 30)},
    invariants={"wipes": wipes_after_commit},
)

COMMITTING_CHECK = rc.system(
    "committing-check",
    schema=ACCOUNTS,
    fresh=FRESH,
    variants={"only": transfer},
    actors={"alice": rc.call(1, 2, 30)},
    invariants={"commits": commits},
)


def transfer_many(conn: Any, src: int, dst: int, amount: int) -> str:
    """Reads the balance, then writes it back and credits in one executemany."""
    with conn.transaction():
        query = "SELECT balance FROM accounts WHERE id = %s"
        (balance,) = conn.execute(query, (src,)).fetchone()
        with conn.cursor() as cur:
            cur.executemany(
                "UPDATE accounts SET balance = %s * balance + %s WHERE id = %s",
                [(0, balance - amount, src), (1, amount, dst)],
            )
    return "done"


EXECUTEMANY = rc.system(
    "executemany",
    schema=ACCOUNTS,
    fresh=FRESH,
    variants={"only": transfer_many},
    actors={"alice": rc.call(1, 2, 30), "bob": rc.call(1, 2, 50)},
    invariants=CONSERVED,
    watch_sql="SELECT id, balance FROM accounts ORDER BY id",
)


def stage(conn: Any, n: int) -> str:
    """Changes its session for longer than its transaction."""
    conn.execute("CREATE TEMP TABLE staging (x int)")
    conn.execute("INSERT INTO staging VALUES (%s)", (n,))
    conn.execute("SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE")
    conn.execute("PREPARE mine AS SELECT 1")
    conn.execute("SELECT pg_advisory_lock(42)")
    return str(conn.execute("SHOW default_transaction_isolation").fetchone()[0])


STAGING = rc.system(
    "staging",
    schema=ACCOUNTS,
    variants={"only": stage},
    actors={"alice": rc.call(1)},
    invariants={"none": "SELECT 1 WHERE false"},
)


def buggy(conn: Any, n: int) -> None:
    """Raises before its first statement."""
    conn.execute("SELECT %s", (n + "1",))


BUGGY = rc.system(
    "buggy",
    schema=ACCOUNTS,
    variants={"only": buggy},
    actors={"alice": rc.call(1)},
    invariants={"none": "SELECT 1 WHERE false"},
)


def audit(conn: Any, message: str) -> str:
    """Logs on a connection of its own, closed again before its first gated statement."""
    info = conn.info
    params = {"host": info.host, "port": info.port, "user": info.user, "dbname": info.dbname}
    with psycopg.connect(**params, password=info.password, autocommit=True) as own:
        own.execute("INSERT INTO accounts VALUES (3, 0) ON CONFLICT DO NOTHING")
    conn.execute("SELECT count(*) FROM accounts")
    return message


AUDIT = rc.system(
    "audit",
    schema=ACCOUNTS,
    fresh=FRESH,
    variants={"only": audit},
    actors={"alice": rc.call("a"), "bob": rc.call("b")},
    invariants={"none": "SELECT 1 WHERE false"},
)


def bump(conn: Any, amount: int) -> str:
    """Leaves its transaction open (its caller would commit)."""
    conn.execute("UPDATE accounts SET balance = balance + %s WHERE id = 1", (amount,))
    return "bumped"


UNCOMMITTED = rc.system(
    "uncommitted",
    schema=ACCOUNTS,
    fresh=FRESH,
    variants={"only": bump},
    actors={"alice": rc.call(1), "bob": rc.call(2)},
    invariants={"none": "SELECT 1 WHERE false"},
    autocommit=False,
)

BOTH_BUMP = """
system = "test_code_review:UNCOMMITTED"
name = "bob waits for alice's open transaction"
stores = ["only"]
schedule = ["T+0 alice: s1", "T+1 bob: s1"]

[actors]
alice = { program = "main", args = [1] }
bob = { program = "main", args = [2] }

[expect]
only = "holds"
"""


def piped(conn: Any, src: int, dst: int, amount: int) -> str:
    with conn.transaction(), conn.pipeline():
        conn.execute("UPDATE accounts SET balance = balance - %s WHERE id = %s", (amount, src))
        conn.execute("UPDATE accounts SET balance = balance + %s WHERE id = %s", (amount, dst))
    return "done"


def piped_autocommit(conn: Any, src: int, dst: int, amount: int) -> str:
    with conn.pipeline():  # autocommit: one implicit transaction
        conn.execute("UPDATE accounts SET balance = balance - %s WHERE id = %s", (amount, src))
        conn.execute("UPDATE accounts SET balance = balance + %s WHERE id = %s", (amount, dst))
    return "done"


PIPED_AUTOCOMMIT = rc.system(
    "piped-autocommit",
    schema=ACCOUNTS,
    fresh=FRESH,
    variants={"only": piped_autocommit},
    actors={"alice": rc.call(1, 2, 30)},
    invariants=CONSERVED,
)


PIPED = rc.system(
    "piped",
    schema=ACCOUNTS,
    fresh=FRESH,
    variants={"only": piped},
    actors={"alice": rc.call(1, 2, 30), "bob": rc.call(1, 2, 10)},
    invariants=CONSERVED,
)


def dawdle(conn: Any, seconds: float) -> str:
    """Sleeps between two statements, past racesim's bound on a function's own time."""
    conn.execute("SELECT 1")
    time.sleep(seconds)
    conn.execute("SELECT 2")
    return "late"


DAWDLE = rc.system(
    "dawdle",
    schema=ACCOUNTS,
    variants={"only": dawdle},
    actors={"alice": rc.call(PYTHON_BOUND + 2)},
    invariants={"none": "SELECT 1 WHERE false"},
)


@pytest.fixture
def database(pg_server: Server, racesim_prepared: Prepared) -> Iterator[Any]:
    """``make(system)``: a fresh database of that system, its conninfo (dropped after)."""
    made: list[tuple[Any, str]] = []

    def make(system: System) -> str:
        dbs = racesim_prepared.for_system(system)
        name = dbs.create()
        made.append((dbs, name))
        return pg_server.conninfo(name)

    yield make
    for dbs, name in made:
        dbs.drop(name)


def alone(actor: str, args: list[Any], steps: int) -> Plan:
    return Plan(
        (Actor(actor, "main", {"args": args}),),
        tuple(Step(actor, f"s{i}") for i in range(1, steps + 1)),
    )


def test_an_inner_transaction_block_is_its_savepoint_by_psycopgs_name(database: Any) -> None:
    conninfo = database(SAVEPOINTS)
    events = execute(alone("alice", [1, 30], 7), "only", conninfo, system=SAVEPOINTS).history.events
    assert [(e.sql, e.result or e.sqlstate) for e in events] == [
        ("BEGIN", "BEGIN"),
        ("UPDATE accounts SET balance = balance - 30 WHERE id = 1", "UPDATE 1"),
        ('SAVEPOINT "_pg3_2"', "SAVEPOINT"),
        ("UPDATE accounts SET balance = balance / 0 WHERE id = 1", "22012"),
        ('ROLLBACK TO "_pg3_2"; RELEASE "_pg3_2"', "ROLLBACK"),
        ("UPDATE accounts SET balance = balance + 30 WHERE id = 2", "UPDATE 1"),
        ("COMMIT", "COMMIT"),
    ]
    assert events[-1].finished == "'done'"
    # the statements as shown are ones PostgreSQL takes: each has a footprint to reduce by
    sent = tuple(e.sql for e in events)
    footprints = Footprints(schema_of(ACCOUNTS))
    assert all(footprints.after(sent[:i]) is not None for i in range(1, len(sent) + 1))


@pytest.mark.parametrize(
    ("system", "message"),
    [
        ("BAD_SCHEMA", "system 'bad-schema': its schema SQL fails (SyntaxError: "),
        ("BAD_FRESH", "system 'bad-fresh': its fresh SQL fails (UndefinedTable: "),
    ],
)
def test_schema_or_fresh_sql_that_fails_is_one_line_and_exit_2(
    pg_server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str], system: str, message: str
) -> None:
    argv = ["explore", "--system", f"test_code_review:{system}", "--store", "only"]
    argv += ["--strategy", "exhaustive", "--out", str(tmp_path), "--dsn", pg_server.conninfo()]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err


def test_a_python_invariant_that_commits_cannot_write_and_is_refused(database: Any) -> None:
    conninfo = database(WRITING_CHECK)
    with pytest.raises(InputError, match=r"invariant 'wipes' .*an invariant only reads"):
        execute(alone("alice", [1, 2, 30], 4), "wipes", conninfo, system=WRITING_CHECK)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        rows = conn.execute("SELECT id, balance FROM accounts ORDER BY id").fetchall()
        assert rows == [(1, 70), (2, 130)]  # the run's transfer, and no DELETE
        assert conn.execute("SHOW default_transaction_read_only").fetchone() == ("off",)


def test_a_python_invariant_that_commits_is_one_line_and_exit_2(
    pg_server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["explore", "--system", "test_code_review:COMMITTING_CHECK", "--store", "only"]
    argv += ["--strategy", "exhaustive", "--out", str(tmp_path), "--dsn", pg_server.conninfo()]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "invariant 'commits' ended the read-only transaction" in err, err
    assert len(err.strip().splitlines()) == 1, err


def test_an_executemany_is_its_statements_with_their_values_and_exports_as_sql(
    target15: Target, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["explore", "--system", "test_code_review:EXECUTEMANY", "--store", "only"]
    argv += ["--strategy", "exhaustive", "--export-spec", "--out", str(tmp_path)]
    assert main([*argv, "--dsn", target15.dbs.server.conninfo()]) == 1
    assert "pipeline" not in capsys.readouterr().err  # psycopg's own pipeline: one step
    (saved,) = tmp_path.glob("*.toml")
    assert (
        '"UPDATE accounts SET balance = 0 * balance + 70 WHERE id = 1;'
        ' UPDATE accounts SET balance = 1 * balance + 30 WHERE id = 2"' in saved.read_text()
    )
    (spec,) = tmp_path.glob("*.spec")
    assert "%s" not in spec.read_text()
    status, output = target15.reference(spec)
    assert status == 0, output.decode()
    assert "ERROR" not in output.decode(), output.decode()


def test_a_session_a_function_changed_is_as_new_for_the_next_run(database: Any) -> None:
    conninfo = database(STAGING)
    with SessionPool(conninfo, "only", STAGING) as pool:
        session, _ = pool.session(0)
        deadlock_timeout = session.execute("SHOW deadlock_timeout").fetchone()
        for _ in range(2):  # the second run on the same session starts as the first did
            plan = alone("alice", [1], 7)
            events = execute(plan, "only", pool=pool, system=STAGING).history.events
            assert [e.error for e in events] == [None] * 7
            # the autocommit INSERT is two steps: itself in a transaction, its commit
            assert [e.sql for e in events[1:3]] == [
                "BEGIN; INSERT INTO staging VALUES (1)",
                "COMMIT",
            ]
            assert events[-1].finished == "'serializable'"
        pool.reset()
        assert session.execute("SHOW default_transaction_isolation").fetchone() == (
            "read committed",
        )
        assert session.execute("SHOW deadlock_timeout").fetchone() == deadlock_timeout
        assert session.execute("SELECT to_regclass('pg_temp.staging')").fetchone() == (None,)
        held = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = %s"
        assert session.execute(held, (session.info.backend_pid,)).fetchone() == (0,)


def test_a_function_raising_before_its_first_statement_is_shown_with_its_line(
    pg_server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["explore", "--system", "test_code_review:BUGGY", "--store", "only"]
    argv += ["--strategy", "exhaustive", "--out", str(tmp_path), "--dsn", pg_server.conninfo()]
    assert main(argv) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    raised_at = next(
        i
        for i, text in enumerate(Path(__file__).read_text().splitlines(), 1)
        if '(n + "1",)' in text
    )
    assert (
        "actor alice: its function raised TypeError: unsupported operand type(s) for +: 'int'"
        f" and 'str' (tests/test_code_review.py:{raised_at}) before sending any statement" in line
    ), line
    assert "connection of the function's own" not in line


def test_a_short_lived_connection_of_the_functions_own_is_told_once_with_its_line(
    pg_server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["explore", "--system", "test_code_review:AUDIT", "--store", "only"]
    argv += ["--strategy", "exhaustive", "--out", str(tmp_path), "--dsn", pg_server.conninfo()]
    assert main(argv) == 0
    notes = [line for line in capsys.readouterr().err.splitlines() if "racesim: note:" in line]
    opened_at = next(
        i
        for i, text in enumerate(Path(__file__).read_text().splitlines(), 1)
        if "with psycopg.connect(**params" in text
    )
    assert len(notes) == 1, notes
    assert f"connection of its own at tests/test_code_review.py:{opened_at}" in notes[0]


def test_a_function_ending_inside_its_transaction_is_told_once(
    pg_server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bump.toml"
    path.write_text(BOTH_BUMP)
    argv = ["run", "--system", "test_code_review:UNCOMMITTED", str(path)]
    assert main([*argv, "--dsn", pg_server.conninfo()]) == 1  # bob can never finish
    captured = capsys.readouterr()
    assert "stuck: bob waits in s1" in captured.out
    notes = [line for line in captured.err.splitlines() if line.startswith("racesim: note:")]
    assert len(notes) == 1, notes
    assert "actor alice's function ended with its transaction open" in notes[0]


def test_a_pipeline_in_a_transaction_is_stepped_statement_by_statement(
    database: Any, pg_server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    conninfo = database(PIPED)
    actors = (
        Actor("alice", "main", {"args": [1, 2, 30]}),
        Actor("bob", "main", {"args": [1, 2, 10]}),
    )
    steps = ("alice:s1", "alice:s2", "bob:s1", "bob:s2", "alice:s3", "alice:s4")
    plan = Plan(actors, tuple(Step(*s.split(":")) for s in (*steps, "bob:s3", "bob:s4")))
    events = execute(plan, "only", conninfo, system=PIPED).history.events
    kinds = [(e.kind, e.actor, e.call, e.result) for e in events]
    assert kinds[1] == ("step", "alice", "s2", "UPDATE 1")  # its results read in its step
    assert ("wait", "bob", "s2", None) in kinds  # bob's UPDATE of row 1 waits at its own step
    assert {e.actor: e.finished for e in events if e.finished} == {
        "alice": "'done'",
        "bob": "'done'",
    }
    # every interleaving runs the same way twice: the exhaustive search completes
    argv = ["explore", "--system", "test_code_review:PIPED", "--store", "only"]
    argv += ["--strategy", "exhaustive", "--out", str(tmp_path), "--dsn", pg_server.conninfo()]
    assert main(argv) == 0
    assert "racesim: note:" not in capsys.readouterr().err


def test_a_pipeline_outside_a_transaction_is_told_once_with_its_line(
    database: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    conninfo = database(PIPED_AUTOCOMMIT)
    plan = alone("alice", [1, 2, 30], 2)
    events = execute(plan, "only", conninfo, system=PIPED_AUTOCOMMIT).history.events
    assert events[-1].finished == "'done'"
    notes = [line for line in capsys.readouterr().err.splitlines() if "racesim: note:" in line]
    opened_at = next(
        i
        for i, text in enumerate(Path(__file__).read_text().splitlines(), 1)
        if "with conn.pipeline():  # autocommit" in text
    )
    assert len(notes) == 1, notes
    assert f"outside a transaction at tests/test_code_review.py:{opened_at}" in notes[0]


def test_a_function_dawdling_between_statements_is_one_line_and_exit_2(
    pg_server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["explore", "--system", "test_code_review:DAWDLE", "--store", "only"]
    argv += ["--strategy", "exhaustive", "--out", str(tmp_path), "--dsn", pg_server.conninfo()]
    started = time.monotonic()
    assert main(argv) == 2
    assert time.monotonic() - started < PYTHON_BOUND + 2  # not the engine's bound, then more
    (line,) = capsys.readouterr().err.strip().splitlines()
    sent_at = next(
        i
        for i, text in enumerate(Path(__file__).read_text().splitlines(), 1)
        if 'conn.execute("SELECT 1")' in text
    )
    assert (
        f"actor alice: its function ran for over {PYTHON_BOUND:g}s after its statement s1"
        f" (tests/test_code_review.py:{sent_at})" in line
    ), line
