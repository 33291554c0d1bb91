"""Fresh databases cloned from a prepared template, on both PostgreSQL versions."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from racesim.provision.binaries import BinariesNotFound, find_binaries
from racesim.provision.connecting import Spare
from racesim.provision.databases import Databases
from racesim.provision.provide import Server, provide


def prepare(conn: psycopg.Connection[Any]) -> None:
    conn.execute("CREATE TABLE item (id int PRIMARY KEY, note text)")
    conn.execute("INSERT INTO item VALUES (1, 'seed')")


@pytest.fixture(scope="module", params=["system", "embedded"])
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    try:
        find_binaries(request.param)
    except BinariesNotFound as exc:
        pytest.skip(f"no {request.param} binaries: {exc}")
    with provide("local", binaries=request.param) as server:
        yield server


def _databases(server: Server) -> set[str]:
    with psycopg.connect(server.conninfo()) as conn:
        return {row[0] for row in conn.execute("SELECT datname FROM pg_database")}


def _rows(server: Server, name: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(server.conninfo(name)) as conn:
        return conn.execute("SELECT id, note FROM item ORDER BY id").fetchall()


def test_clones_are_isolated_from_each_other_and_the_template(server: Server) -> None:
    with Databases(server, prepare) as dbs:
        first = dbs.create()
        with psycopg.connect(server.conninfo(first), autocommit=True) as conn:
            conn.execute("INSERT INTO item VALUES (2, 'leak?')")
            conn.execute("CREATE TABLE extra (x int)")
        second = dbs.create()
        assert first != second
        assert _rows(server, first) == [(1, "seed"), (2, "leak?")]
        assert _rows(server, second) == [(1, "seed")]
        assert _rows(server, dbs.template) == [(1, "seed")]


def test_close_drops_every_database_it_made(server: Server) -> None:
    before = _databases(server)
    dbs = Databases(server, prepare, label="closeme")
    made = {dbs.create(), dbs.create(), dbs.template}
    assert made <= _databases(server)
    dbs.close()
    assert _databases(server) == before


def test_drop_disconnects_open_sessions(server: Server) -> None:
    with Databases(server, prepare) as dbs:
        name = dbs.create()
        holder = psycopg.connect(server.conninfo(name))
        try:
            dbs.drop(name)
        finally:
            holder.close()
        assert name not in _databases(server)


def test_names_are_unique_per_process_and_instance(server: Server) -> None:
    with (
        Databases(server, prepare, label="same") as a,
        Databases(server, prepare, label="same") as b,
    ):
        names = [a.create(), b.create(), a.create()]
        assert len(set(names)) == 3
        assert all(n.startswith(f"same_{os.getpid()}_") for n in names)
        assert a.template != b.template


def test_prepare_runs_once(server: Server) -> None:
    calls: list[str] = []

    def counting(conn: psycopg.Connection[Any]) -> None:
        calls.append(conn.info.dbname)
        prepare(conn)

    with Databases(server, counting) as dbs:
        dbs.create()
        dbs.create()
    assert len(calls) == 1


def test_failed_prepare_leaves_no_database(server: Server) -> None:
    before = _databases(server)

    def broken(conn: psycopg.Connection[Any]) -> None:
        conn.execute("CREATE TABLE nope (")

    dbs = Databases(server, broken)
    with pytest.raises(psycopg.errors.SyntaxError):
        dbs.create()
    dbs.close()
    assert _databases(server) == before


@pytest.mark.parametrize("strategy", ["default", "file_copy", "wal_log"])
def test_every_clone_strategy_works(server: Server, strategy: str) -> None:
    if server.version < 15 and strategy != "default":
        pytest.skip("STRATEGY needs PostgreSQL 15")
    with Databases(server, prepare, strategy=strategy) as dbs:  # type: ignore[arg-type]
        assert _rows(server, dbs.create()) == [(1, "seed")]


def test_the_first_look_at_a_dsn_server_becomes_the_maintenance_connection(server: Server) -> None:
    """The connection provide() opens to look at a server given by DSN is the one the
    first Databases uses (one authentication less a run), and provide closes it."""
    app = f"racesim_look_{os.getpid()}"
    dsn = f"{server.conninfo()} application_name={app}"

    with psycopg.connect(server.conninfo(), autocommit=True) as watch:

        def backends() -> list[int]:
            rows = watch.execute(
                "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (app,)
            ).fetchall()
            return [pid for (pid,) in rows]

        with provide("dsn", dsn) as given:
            looked = backends()
            assert len(looked) == 1
            with Databases(given, None) as dbs:
                name = dbs.create()
                assert backends() == looked
                assert name in _databases(server)
        deadline = time.monotonic() + 5
        while backends() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert backends() == []


def test_a_spare_connection_is_handed_on_once(server: Server) -> None:
    conn = psycopg.connect(server.conninfo(), autocommit=True)
    spare = Spare(conn)
    assert spare.take() is conn
    assert spare.take() is None
    spare.close()  # taken: not its to close
    assert not conn.closed
    conn.close()
    closed = psycopg.connect(server.conninfo())
    closed.close()
    assert Spare(closed).take() is None
    left = psycopg.connect(server.conninfo())
    Spare(left).close()
    assert left.closed


def test_asking_for_the_dsn_databases_conninfo_closes_the_spare(server: Server) -> None:
    """Whoever connects to the database the DSN names itself (a spec run in it with
    --in-database) finds no idle session of racesim's there."""
    app = f"racesim_spare_{os.getpid()}"
    with (
        psycopg.connect(server.conninfo(), autocommit=True) as watch,
        provide("dsn", f"{server.conninfo()} application_name={app}") as given,
    ):
        query = "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
        assert watch.execute(query, (app,)).fetchone() == (1,)
        given.conninfo()
        assert given.spare.take() is None
        deadline = time.monotonic() + 5
        while watch.execute(query, (app,)).fetchone() != (0,) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert watch.execute(query, (app,)).fetchone() == (0,)


def test_a_live_owners_databases_are_not_reaped_while_its_session_is_reopened(
    server: Server,
) -> None:
    # The owner's maintenance session died (a terminated backend, a server restart),
    # so its lease is free for a moment; the owner itself still runs (here, in this
    # very process), and its databases are not left over.
    with Databases(server, prepare, label="racesim_owner") as owner:
        name = owner.create()
        assert owner._conn is not None
        owner._conn.close()
        with Databases(server, prepare, label="racesim_reaper") as reaper:
            reaper.create()
        assert name in _databases(server)
        owner.create()  # reconnects, takes its lease again, clones its template
