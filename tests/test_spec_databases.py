"""A spec's databases: cloned from template0 (no template of racesim's), dropped after
its closed sessions have left."""

from __future__ import annotations

import psycopg

from racesim.provision.databases import Databases
from racesim.provision.provide import Server


def _names(server: Server) -> set[str]:
    with psycopg.connect(server.conninfo(), autocommit=True) as conn:
        return {r[0] for r in conn.execute("SELECT datname FROM pg_database").fetchall()}


def test_empty_databases_clone_template0_and_leave_it(pg_server: Server) -> None:
    before = _names(pg_server)
    with Databases(pg_server, None, label="racesim_spectest") as dbs:
        assert dbs.template == "template0"
        name = dbs.create()
        assert _names(pg_server) - before == {name}  # no template of racesim's was made
        with psycopg.connect(pg_server.conninfo(name)) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace"
            ).fetchone()
            assert row == (0,)
        dbs.drop(name, settle=0.2)
        assert name not in _names(pg_server)
        other = dbs.create()
    assert other not in _names(pg_server)
    assert "template0" in _names(pg_server)


def test_settle_waits_for_closed_sessions_and_still_drops_open_ones(pg_server: Server) -> None:
    with Databases(pg_server, None, label="racesim_spectest") as dbs:
        name = dbs.create()
        open_one = psycopg.connect(pg_server.conninfo(name))
        try:
            dbs.drop(name, settle=0.05)  # still connected: dropped all the same (FORCE)
            assert name not in _names(pg_server)
        finally:
            open_one.close()
