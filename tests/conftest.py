"""Shared fixtures: one throwaway PostgreSQL per test process, a fresh database per test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from harness.databases import Databases
from harness.provision import Server, provide
from harness.schema import prepare
from harness.sessions import connect


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Server]:
    """A PostgreSQL for this test process (each xdist worker gets its own cluster)."""
    with provide(os.environ.get("RACESIM_TEST_PG", "auto")) as server:
        yield server


@pytest.fixture(scope="session")
def databases(pg_server: Server) -> Iterator[Databases]:
    with Databases(pg_server, prepare, label="racesim_test") as dbs:
        yield dbs


@pytest.fixture
def dbname(databases: Databases) -> Iterator[str]:
    """A fresh database at the latest schema, with the virtual clock installed."""
    name = databases.create()
    yield name
    databases.drop(name)


@pytest.fixture
def conninfo(pg_server: Server, dbname: str) -> str:
    return pg_server.conninfo(dbname)


@pytest.fixture
def conn(conninfo: str) -> Iterator[psycopg.Connection[Any]]:
    """An autocommit session on the fresh database that follows the virtual clock."""
    with connect(conninfo) as c:
        yield c
