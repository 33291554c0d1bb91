"""``racesim.testing.database`` and ``racesim_empty_db``: a project's own schema in fresh
databases, used from a user's test files (run in a subprocess, on this process's server)."""

from __future__ import annotations

from pathlib import Path

import pytest
from commands import pytest_run

from racesim.provision.provide import Server

SCHEMA = """
CREATE TABLE seats (event TEXT PRIMARY KEY, free INT NOT NULL);
INSERT INTO seats VALUES ('gala', 2);
"""

CONFTEST = """
from racesim.testing import database

def add_bookings(conn):
    conn.execute("CREATE TABLE bookings (event TEXT, who TEXT)")

seats_db = database("schema.sql", add_bookings)
"""

USER_TESTS = """
import psycopg

def test_loaded(seats_db):
    with psycopg.connect(seats_db, autocommit=True) as conn:
        assert conn.execute("SELECT free FROM seats").fetchone() == (2,)
        conn.execute("UPDATE seats SET free = 0")
        conn.execute("INSERT INTO bookings VALUES ('gala', 'ann')")

def test_each_test_gets_a_fresh_copy(seats_db):
    with psycopg.connect(seats_db) as conn:
        assert conn.execute("SELECT free FROM seats").fetchone() == (2,)
        assert conn.execute("SELECT count(*) FROM bookings").fetchone() == (0,)

def test_empty(racesim_empty_db):
    with psycopg.connect(racesim_empty_db) as conn:
        rows = conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables"
            " WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
        ).fetchall()
        assert rows == [("racesim_clock", "frozen")]
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "schema.sql").write_text(SCHEMA)
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_user.py").write_text(USER_TESTS)
    return tmp_path


def test_loaded_and_empty_databases_in_a_users_tests(racesim_server: Server, project: Path) -> None:
    done = pytest_run(project, racesim_server.conninfo())
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 passed" in done.stdout


def test_a_broken_schema_file_fails_naming_its_line(racesim_server: Server, project: Path) -> None:
    (project / "schema.sql").write_text("CREATE TABLE seats (event TEXT);\nCREATE TABL oops;\n")
    done = pytest_run(project, racesim_server.conninfo(), "test_user.py::test_loaded")
    assert done.returncode == 1
    assert "racesim: " in done.stdout
    line = next(x for x in done.stdout.splitlines() if "schema.sql:2:" in x)
    assert 'syntax error at or near "TABL"; fix the SQL' in line
    assert "Traceback" not in done.stdout


def test_a_missing_schema_file_fails_in_one_line(racesim_server: Server, project: Path) -> None:
    (project / "schema.sql").unlink()
    done = pytest_run(project, racesim_server.conninfo(), "test_user.py::test_loaded")
    assert done.returncode == 1
    assert "schema.sql (" in done.stdout and "check the load= path" in done.stdout


def test_load_items_of_a_wrong_kind_are_refused() -> None:
    from racesim.testing import database

    with pytest.raises(TypeError, match=r"load items are \.sql paths, callables or Systems"):
        database(42)
