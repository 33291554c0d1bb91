"""The job queue's migrations, up and down, and the reset between runs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from racesim.provision.databases import Databases
from racesim.provision.provide import Server
from racesim.systems.jobqueue import schema

Conn = psycopg.Connection[Any]


def nothing(conn: Conn) -> None:
    """An empty template: the tests migrate themselves."""


@pytest.fixture(scope="module")
def empty_databases(racesim_server: Server) -> Iterator[Databases]:
    with Databases(racesim_server, nothing, label="racesim_jqschema") as dbs:
        yield dbs


@pytest.fixture
def plain(racesim_server: Server, empty_databases: Databases) -> Iterator[Conn]:
    name = empty_databases.create()
    with psycopg.connect(racesim_server.conninfo(name), autocommit=True) as conn:
        yield conn
    empty_databases.drop(name)


def tables(conn: Conn) -> set[str]:
    rows = conn.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE 'job%%'"
    ).fetchall()
    return {r[0] for r in rows}


def test_migrations_go_up_and_down_step_by_step(plain: Conn) -> None:
    assert [m.name for m in schema.MIGRATIONS] == ["jobs", "job_results"]
    assert schema.current_version(plain) == 0
    assert schema.migrate(plain) == schema.LATEST == 2
    assert tables(plain) == {"jobs", "job_results", "jobqueue_schema_version"}
    assert schema.migrate(plain, to=1) == 1
    assert tables(plain) == {"jobs", "jobqueue_schema_version"}
    assert schema.migrate(plain, to=0) == 0
    assert tables(plain) == {"jobqueue_schema_version"}
    assert schema.migrate(plain) == 2
    assert schema.migrate(plain) == 2  # nothing left to do
    assert schema.current_version(plain) == 2


def test_out_of_range_versions_are_refused(plain: Conn) -> None:
    with pytest.raises(ValueError, match=r"must be 0\.\.2, got 3"):
        schema.migrate(plain, to=3)
    schema.migrate(plain)
    plain.execute("UPDATE jobqueue_schema_version SET version = 9")
    with pytest.raises(ValueError, match="newer than this racesim knows"):
        schema.migrate(plain)


def test_status_is_checked_by_the_table(plain: Conn) -> None:
    schema.migrate(plain)
    with pytest.raises(psycopg.errors.CheckViolation):
        plain.execute("INSERT INTO jobs (payload, status, enqueued_at) VALUES ('a', 'lost', now())")


def test_reset_empties_the_queue_and_restarts_the_ids(plain: Conn) -> None:
    schema.migrate(plain)
    for payload in ("a", "b"):
        plain.execute("INSERT INTO jobs (payload, enqueued_at) VALUES (%s, now())", (payload,))
    plain.execute(
        "INSERT INTO job_results (job_id, worker, attempt, processed_at) VALUES (1, 'w', 1, now())"
    )
    schema.reset(plain)
    assert plain.execute("SELECT count(*) FROM jobs").fetchone() == (0,)
    assert plain.execute("SELECT count(*) FROM job_results").fetchone() == (0,)
    row = plain.execute(
        "INSERT INTO jobs (payload, enqueued_at) VALUES ('c', now()) RETURNING id"
    ).fetchone()
    assert row == (1,)
