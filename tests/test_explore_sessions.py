"""An exploration opens the sessions its runs will use side by side, before its
first schedule, instead of one by one as each run first steps."""

from __future__ import annotations

import io
from pathlib import Path

import psycopg
import pytest

from racesim.bench.breakdown import Breakdown
from racesim.engine.pool import SessionPool
from racesim.explore.run import ExploreOptions, explore
from racesim.provision.databases import Databases
from racesim.report.text import Reporter
from racesim.store.system import CONFIGS, SYSTEM


def _actors(dbs: Databases, name: str) -> int:
    with psycopg.connect(dbs.server.conninfo(name), autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND application_name = 'racesim-actor'"
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_the_pool_opens_sessions_side_by_side(databases: Databases) -> None:
    name = databases.create()
    try:
        with SessionPool(databases.server.conninfo(name), "legacy", SYSTEM) as pool:
            pool.open(3)
            assert _actors(databases, name) == 3
            first = [pool.session(i)[0] for i in range(3)]
            assert _actors(databases, name) == 3  # taken, not opened again
            assert len({id(pool.session(i)[1]) for i in range(3)}) == 3  # a worker each
            pool.open(2)  # already open: nothing to do
            assert [pool.session(i)[0] for i in range(3)] == first
            assert _actors(databases, name) == 3
    finally:
        databases.drop(name)


def test_a_session_that_cannot_open_leaves_none_open(databases: Databases) -> None:
    name = databases.create()
    try:
        with SessionPool(databases.server.conninfo(name), "legacy", SYSTEM) as pool:
            pool.conninfo = databases.server.conninfo("racesim_no_such_database")
            with pytest.raises(psycopg.OperationalError):
                pool.open(3)
            pool.conninfo = databases.server.conninfo(name)
            assert _actors(databases, name) == 0
            pool.open(1)
            assert _actors(databases, name) == 1
    finally:
        databases.drop(name)


def test_explore_opens_its_rosters_sessions_at_once(databases: Databases, tmp_path: Path) -> None:
    opts = ExploreOptions(
        store="legacy", strategy="exhaustive", config="cron+user", max_examples=3, out=tmp_path
    )
    with Breakdown() as timing:
        explore(opts, databases, Reporter(io.StringIO()))
    calls = [what for what, _, _ in timing.calls if what == "opening sessions"]
    # one side-by-side opening for the roster's runs; none one by one afterwards
    assert len(CONFIGS["cron+user"].actors) == 2 and calls == ["opening sessions"]
