"""Races inside one statement, in users' Python code: an autocommit statement that
changes data is two steps, itself in a transaction and its COMMIT, so schedules reach
the window between a statement's work and its commit. The default explorer finds two
``INSERT ... WHERE NOT EXISTS`` both inserting, and two ``UPDATE ... WHERE id =
(SELECT ... LIMIT 1)`` both claiming one job; run to its commit in one step, as
before, no schedule can. What the function sees is what autocommit gives it. On real
PostgreSQL."""

from __future__ import annotations

import importlib
import re
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from spec_support import Target, target15

import racesim.code as rc
from racesim.cli.main import main
from racesim.code.commits import changes_data
from racesim.code.reduce import Footprints
from racesim.engine.loop import execute
from racesim.engine.pool import SessionPool
from racesim.explore.search import exhaustive
from racesim.footprints import schema_of
from racesim.model.plan import Actor, Plan, Step
from racesim.provision.provide import Server
from racesim.runner import Prepared
from racesim.system import System

ROOT = Path(__file__).parent.parent
__all__ = ["target15"]

# -- the README's example, as written ----------------------------------------------

BOOKING = '''\
# file: booking.py
import racesim.code as rc


def book(conn, seat, person):
    """Books the seat unless it is booked: one autocommit statement."""
    cur = conn.execute(
        "INSERT INTO bookings SELECT %s, %s"
        " WHERE NOT EXISTS (SELECT FROM bookings WHERE seat = %s)",
        (seat, person, seat),
    )
    return cur.rowcount == 1


def book_unique(conn, seat, person):
    """The seat is the key: of two inserts, the second does nothing."""
    cur = conn.execute(
        "INSERT INTO seats VALUES (%s, %s) ON CONFLICT (seat) DO NOTHING", (seat, person)
    )
    return cur.rowcount == 1


def booked_once(conn, results):
    booked = sorted(actor for actor, ok in results.items() if ok is True)
    assert len(booked) == 1, f"booked by {' and '.join(booked) or 'nobody'}"


SYSTEM = rc.system(
    "booking",
    schema="CREATE TABLE bookings (seat int, person text);"
    " CREATE TABLE seats (seat int PRIMARY KEY, person text)",
    fresh="DELETE FROM bookings; DELETE FROM seats",
    variants={"not-exists": book, "on-conflict": book_unique},
    actors={"alice": rc.call(1, "alice"), "bob": rc.call(1, "bob")},
    invariants={"one booking per seat": booked_once},
)
'''

COMMANDS = """\
racesim explore --system booking:SYSTEM --store not-exists --out found  # exit 1
racesim explore --system booking:SYSTEM --store on-conflict --strategy exhaustive  # exit 0
"""
"""The page's ``sh`` block: each command and the exit status it has."""

OUTPUT = """\
$ racesim explore --system booking:SYSTEM --store not-exists --out found
== found/not-exists-one_booking_per_seat-portfolio-seed0.toml [not-exists] one booking per seat (seed 0, 4 steps)
  T+0   alice: s1 -> INSERT 0 1
          booking.py:7: BEGIN; INSERT INTO bookings SELECT 1, 'alice' WHERE NOT EXISTS (SELECT FROM bookings WHERE seat = 1)
  T+1   bob: s1 -> INSERT 0 1
          booking.py:7: BEGIN; INSERT INTO bookings SELECT 1, 'bob' WHERE NOT EXISTS (SELECT FROM bookings WHERE seat = 1)
  T+2   bob: s2 -> COMMIT
          booking.py:7: COMMIT
        bob finished: True
  T+3   alice: s2 -> COMMIT                                          | broken: one booking per seat
          booking.py:7: COMMIT
        alice finished: True
        !! one booking per seat: booked by alice and bob
   ok   breaks one booking per seat at T+3, as expected
"""
"""The page's ``console`` block: what the first command prints before its summary
line (whose figures are timings)."""

HOLDS = "exhaustive: all 4 distinct schedules explored, none violates (on-conflict"
"""What the second prints: each INSERT ... ON CONFLICT is two steps, and a second
one waits for the first's commit."""

SCHEMA = "CREATE TABLE bookings (seat int, person text); CREATE TABLE seats (seat int PRIMARY KEY, person text)"
FRESH = "DELETE FROM bookings; DELETE FROM seats"


@pytest.fixture
def booking(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """``booking.py`` as the page shows it, in an empty folder that is the current one."""
    (tmp_path / "booking.py").write_text(BOOKING)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("booking", None)
    yield importlib.import_module("booking")
    sys.modules.pop("booking", None)


def test_the_pages_example_runs_and_prints_as_written(
    pg_server: Server, booking: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    ran = []
    for line in COMMANDS.splitlines():
        command, status = line.split("  # exit ")
        argv = shlex.split(command)
        assert argv[:2] == ["racesim", "explore"]
        assert main([*argv[1:], "--dsn", pg_server.conninfo()]) == int(status), command
        ran.append((command, capsys.readouterr().out))
    (first, found), (_, held) = ran
    shown = OUTPUT.splitlines()
    assert shown[0] == f"$ {first}"
    printed = [line.rstrip() for line in found.splitlines()]
    assert printed[: len(shown) - 1] == shown[1:], found
    assert re.search(
        r"^found 1 violation\(s\) \(one booking per seat\) after \d+ schedules", found, re.M
    ), found
    assert HOLDS in held, held
    (saved,) = Path("found").glob("*.toml")
    replay = ["replay", str(saved), "--system", "booking:SYSTEM", "--dsn", pg_server.conninfo()]
    assert main(replay) == 1
    assert "reproduced: one booking per seat" in capsys.readouterr().out


def test_a_page_showing_the_example_shows_the_text_tested_here() -> None:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    for page in pages:
        text = page.read_text()
        if "# file: booking.py\n" in text:
            for block in (BOOKING, COMMANDS, OUTPUT):
                assert block in text, f"{page.name}: a block differs from {__file__}'s:\n{block}"


def test_without_commit_steps_no_schedule_double_books(
    pg_server: Server, booking: Any, tmp_path: Path
) -> None:
    made = rc.system(
        "booking-whole",
        schema=SCHEMA,
        fresh=FRESH,
        variants={"not-exists": booking.book},
        actors={"alice": rc.call(1, "alice"), "bob": rc.call(1, "bob")},
        invariants={"one booking per seat": booking.booked_once},
        commit_steps=False,
    )
    result = _exhaustive(pg_server, made, "not-exists")
    assert result.complete and not result.found and result.explored == 2


# -- a job claimed twice: the subquery's pick is re-checked by id only -------------

PICK = "SELECT id FROM jobs WHERE worker IS NULL ORDER BY id LIMIT 1"


def claim(conn: Any, worker: str, lock: str = "") -> int | None:
    """Claims the first free job in one autocommit UPDATE; its id, or None."""
    row = conn.execute(
        f"UPDATE jobs SET worker = %s WHERE id = ({PICK}{lock}) RETURNING id", (worker,)
    ).fetchone()
    return row[0] if row else None


def claim_skip_locked(conn: Any, worker: str) -> int | None:
    return claim(conn, worker, " FOR UPDATE SKIP LOCKED")


def own_jobs(conn: Any, results: dict[str, Any]) -> None:
    for worker, job in results.items():
        if job is not None:
            (owner,) = conn.execute("SELECT worker FROM jobs WHERE id = %s", (job,)).fetchone()
            assert owner == worker, f"{worker} claimed job {job}, now {owner}'s"


JOBS_GIVEN: dict[str, Any] = {
    "schema": "CREATE TABLE jobs (id int PRIMARY KEY, worker text)",
    "fresh": "DELETE FROM jobs; INSERT INTO jobs VALUES (1, NULL), (2, NULL)",
    "actors": {"w1": rc.call("w1"), "w2": rc.call("w2")},
    "invariants": {"each claim is its worker's": own_jobs},
}

JOBS = rc.system(
    "jobs", variants={"limit-1": claim, "skip-locked": claim_skip_locked}, **JOBS_GIVEN
)


def test_the_default_explorer_finds_a_job_claimed_twice(
    pg_server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--system", "test_code_commits:JOBS", "--store", "limit-1", "--out", str(tmp_path)]
    assert main(["explore", *argv, "--dsn", pg_server.conninfo()]) == 1
    out = capsys.readouterr().out
    assert "found 1 violation(s) (each claim is its worker's)" in out
    # w2's UPDATE waits on w1's uncommitted claim of job 1, then re-checks id = 1 only
    assert "w2: s1 -> waiting (blocked in PostgreSQL)" in out
    assert re.search(r"!! each claim is its worker's: w(1|2) claimed job 1, now w(2|1)'s", out)


def test_skip_locked_holds_and_without_commit_steps_limit_1_holds(pg_server: Server) -> None:
    fixed = _exhaustive(pg_server, JOBS, "skip-locked")
    assert fixed.complete and not fixed.found
    made = rc.system("jobs-whole", variants={"limit-1": claim}, commit_steps=False, **JOBS_GIVEN)
    result = _exhaustive(pg_server, made, "limit-1")
    assert result.complete and not result.found and result.explored == 2


JOBS_WATCHED = rc.system(
    "jobs-watched",
    variants={"limit-1": claim},
    watch_sql="SELECT id, worker FROM jobs ORDER BY id",
    **JOBS_GIVEN,
)


def test_the_exported_spec_claims_a_job_twice_under_isolationtester(
    target15: Target, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["explore", "--system", "test_code_commits:JOBS_WATCHED", "--store", "limit-1"]
    more = ["--strategy", "exhaustive", "--export-spec", "--out", str(tmp_path)]
    assert main([*argv, *more, "--dsn", target15.dbs.server.conninfo()]) == 1
    capsys.readouterr()
    (spec,) = tmp_path.glob("*.spec")
    text = spec.read_text()
    assert "BEGIN; UPDATE jobs SET worker = " in text and "{ COMMIT; }" in text, text
    status, output = target15.reference(spec)
    assert status == 0, output.decode()
    # isolationtester ends where racesim did: job 1 claimed by the second, job 2 free
    last_watch = output.decode().rsplit("step watch", 1)[1]
    assert re.search(r"^ +1\|w[12]\s*$", last_watch, re.M), last_watch
    assert re.search(r"^ +2\|\s*$", last_watch, re.M), last_watch


def _exhaustive(server: Server, system: System, store: str, reduce: bool = True) -> Any:
    dbs = Prepared(server).for_system(system)
    name = dbs.create()
    try:
        with SessionPool(server.conninfo(name), store, system) as pool:
            actors = system.config(None, "exhaustive").roster()
            return exhaustive(actors, store, pool=pool, reduce=reduce, system=system)
    finally:
        dbs.drop(name)


# -- the reduction: the commit step writes what its statement touched ---------------


def test_the_commit_step_conflicts_with_what_its_statement_wrote(pg_server: Server) -> None:
    footprints = Footprints(schema_of(JOBS_GIVEN["schema"]))
    update = f"BEGIN; UPDATE jobs SET worker = 'w1' WHERE id = ({PICK}) RETURNING id"
    assert footprints.after((update,)) is not None
    commit = footprints.after((update, "COMMIT"))
    assert commit is not None and commit.writes == {"jobs"}
    for system, store in ((JOBS, "limit-1"), (JOBS, "skip-locked")):
        pruned = _exhaustive(pg_server, system, store, reduce=True)
        every = _exhaustive(pg_server, system, store, reduce=False)
        assert pruned.complete and every.complete
        assert set(pruned.found) == set(every.found)
        assert pruned.explored <= every.explored
    assert _exhaustive(pg_server, JOBS, "limit-1").found


# -- what the function sees is what autocommit gives it ------------------------------

OBSERVED_SCHEMA = """
CREATE TABLE items (id int PRIMARY KEY, name text);
CREATE TABLE refs (item int REFERENCES items DEFERRABLE INITIALLY DEFERRED)
"""
OBSERVED_FRESH = "DROP INDEX IF EXISTS items_name; DELETE FROM refs; DELETE FROM items"


def observe(conn: Any) -> list[Any]:
    """Autocommit statements of every kind, and what each gives back."""
    seen: list[Any] = []

    def status() -> str:
        return str(conn.info.transaction_status.name)

    def failed(exc: psycopg.Error) -> tuple[str, ...]:
        return ("raised", type(exc).__name__, str(exc).splitlines()[0], status())

    cur = conn.execute("INSERT INTO items VALUES (1, 'a') RETURNING id, name")
    seen.append((cur.statusmessage, cur.rowcount, cur.fetchall(), status()))
    try:
        conn.execute("INSERT INTO items VALUES (%s, 'b')", (1,))
    except psycopg.errors.UniqueViolation as exc:
        seen.append(failed(exc))
    cur = conn.execute("UPDATE items SET name = 'c' WHERE id = 1")
    seen.append((cur.statusmessage, cur.rowcount, status()))
    try:
        conn.execute("INSERT INTO refs VALUES (99)")  # its deferred check fails at commit
    except psycopg.errors.ForeignKeyViolation as exc:
        seen.append(failed(exc))
    conn.execute("VACUUM items")  # cannot run in a transaction block
    conn.execute("CREATE INDEX CONCURRENTLY items_name ON items (name)")  # nor can this
    cur = conn.cursor()
    cur.executemany("INSERT INTO items VALUES (%s, %s)", [(2, "d"), (3, "e")])
    with conn.transaction():
        conn.execute("DELETE FROM items WHERE id = 3")
    cur = conn.execute(
        "WITH gone AS (DELETE FROM items WHERE id = 2 RETURNING id) SELECT id FROM gone"
    )
    seen.append((cur.statusmessage, cur.fetchall()))
    seen.append(conn.execute("SELECT id, name FROM items ORDER BY id FOR UPDATE").fetchall())
    seen.append(conn.execute("SELECT count(*) FROM refs").fetchone())
    return seen


OBSERVED = rc.system(
    "observed",
    schema=OBSERVED_SCHEMA,
    fresh=OBSERVED_FRESH,
    variants={"only": observe},
    actors={"alice": rc.call()},
    invariants={"none": "SELECT 1 WHERE false"},
)


def test_the_function_sees_what_autocommit_gives_it(
    pg_server: Server, racesim_prepared: Prepared
) -> None:
    dbs = racesim_prepared.for_system(OBSERVED)
    name = dbs.create()
    conninfo = pg_server.conninfo(name)
    try:
        plan = Plan((Actor("alice", "main", {"args": []}),), _steps("alice", 18))
        events = execute(plan, "only", conninfo, system=OBSERVED).history.events
        with psycopg.connect(conninfo, autocommit=True) as plain:
            plain.execute(OBSERVED_FRESH)
            expected = observe(plain)
    finally:
        dbs.drop(name)
    assert events[-1].finished == repr(expected)
    assert [(e.sql, e.result or e.sqlstate) for e in events] == [
        ("BEGIN; INSERT INTO items VALUES (1, 'a') RETURNING id, name", "INSERT 0 1"),
        ("COMMIT", "COMMIT"),
        ("BEGIN; INSERT INTO items VALUES (1, 'b')", "23505"),
        ("COMMIT", "ROLLBACK"),  # it ends the failed transaction
        ("BEGIN; UPDATE items SET name = 'c' WHERE id = 1", "UPDATE 1"),
        ("COMMIT", "COMMIT"),
        ("BEGIN; INSERT INTO refs VALUES (99)", "INSERT 0 1"),
        ("COMMIT", "23503"),  # the deferred check: the function gets this error
        ("VACUUM items", "VACUUM"),
        ("CREATE INDEX CONCURRENTLY items_name ON items (name)", "CREATE INDEX"),
        (
            "INSERT INTO items VALUES (2, 'd'); INSERT INTO items VALUES (3, 'e')",
            "INSERT",
        ),  # an executemany: one step, as before
        ("BEGIN", "BEGIN"),  # its own transaction: as before
        ("DELETE FROM items WHERE id = 3", "DELETE 1"),
        ("COMMIT", "COMMIT"),
        (
            "BEGIN; WITH gone AS (DELETE FROM items WHERE id = 2 RETURNING id) SELECT id FROM gone",
            "SELECT 1",
        ),
        ("COMMIT", "COMMIT"),
        ("SELECT id, name FROM items ORDER BY id FOR UPDATE", "SELECT 1"),
        ("SELECT count(*) FROM refs", "SELECT 1"),
    ]


def _steps(actor: str, count: int) -> tuple[Step, ...]:
    return tuple(Step(actor, f"s{i}") for i in range(1, count + 1))


# -- async functions, and a run stopped between a statement and its commit ----------


async def book_async(conn: Any, seat: int, person: str) -> bool:
    cur = await conn.execute(
        "INSERT INTO bookings SELECT %s, %s WHERE NOT EXISTS (SELECT FROM bookings WHERE seat = %s)",
        (seat, person, seat),
    )
    return bool(cur.rowcount == 1)


def test_an_async_function_is_raced_the_same_way(pg_server: Server, booking: Any) -> None:
    made = rc.system(
        "booking-async",
        schema=SCHEMA,
        fresh=FRESH,
        variants={"not-exists": book_async},
        actors={"alice": rc.call(1, "alice"), "bob": rc.call(1, "bob")},
        invariants={"one booking per seat": booking.booked_once},
    )
    result = _exhaustive(pg_server, made, "not-exists")
    assert list(result.found) == ["one booking per seat"]


def test_a_run_stopped_before_the_commit_step_leaves_no_row_and_no_lock(
    pg_server: Server, booking: Any, racesim_prepared: Prepared
) -> None:
    system = booking.SYSTEM
    actors = (
        Actor("alice", "main", {"args": [1, "alice"]}),
        Actor("bob", "main", {"args": [1, "bob"]}),
    )
    dbs = racesim_prepared.for_system(system)
    name = dbs.create()
    try:
        with SessionPool(pg_server.conninfo(name), "on-conflict", system) as pool:
            first = execute(
                Plan(actors, (Step("alice", "s1"),)), "on-conflict", pool=pool, system=system
            )
            assert [e.result for e in first.history.events] == ["INSERT 0 1"]
            # alice's insert was not committed when the run ended: bob's does not wait on it
            plan = Plan(actors, (Step("bob", "s1"), Step("bob", "s2")))
            events = execute(plan, "on-conflict", pool=pool, system=system).history.events
            assert [(e.kind, e.result) for e in events] == [
                ("step", "INSERT 0 1"),
                ("step", "COMMIT"),
            ]
            assert events[-1].finished == "True"
            rows = pool.monitor.execute("SELECT seat, person FROM seats").fetchall()
            assert rows == [(1, "bob")]
    finally:
        dbs.drop(name)


def test_what_changes_data() -> None:
    for sql in (
        "INSERT INTO t VALUES (1)",
        "  -- a note\n update t set n = n + 1",
        "/* x */ DELETE FROM t",
        "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE",
        "WITH gone AS (DELETE FROM t RETURNING id) SELECT id FROM gone",
        "WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x",
        "INSERT INTO t VALUES ('a;b');",
    ):
        assert changes_data(sql), sql
    for sql in (
        "SELECT 1",
        "SELECT * FROM t FOR UPDATE",
        "SELECT 'InsertStmt'",
        "WITH x AS (SELECT 1) SELECT * FROM x",
        "VACUUM t",
        "CREATE INDEX CONCURRENTLY i ON t (n)",
        "CALL p()",
        "INSERT INTO t VALUES (1); INSERT INTO t VALUES (2)",
        "INSERT INTO",
    ):
        assert not changes_data(sql), sql


SAVED_WHOLE = """
system = "code_bank:ROLES"
name = "saved when each autocommit statement was one step"
stores = ["autocommit"]
schedule = ["T+0 alice: s1", "T+1 auditor: s1", "T+2 alice: s2"]

[actors]
alice = { program = "pay", args = [1, 2, 30], statements = [
  "UPDATE accounts SET balance = balance + 30 WHERE id = 2",
  "UPDATE accounts SET balance = balance - 30 WHERE id = 1",
] }
auditor = { program = "audit", args = [], statements = ["SELECT sum(balance) FROM accounts"] }

[expect]
autocommit = { breaks = "audit sees whole transfers", at = "T+2" }
"""


def test_a_run_saved_with_whole_statements_replays_as_saved(
    pg_server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "saved.toml"
    path.write_text(SAVED_WHOLE)
    argv = ["run", str(path), "--system", "code_bank:ROLES", "--dsn", pg_server.conninfo()]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "breaks audit sees whole transfers at T+2, as expected" in out, out
    assert "BEGIN;" not in out, out
