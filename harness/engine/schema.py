"""What every racesim database holds: the system's schema and the virtual clock."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg

from racesim.engine import clock
from racesim.system import System, resolve


def preparer(system: System | str | None = None) -> Callable[[psycopg.Connection[Any]], None]:
    """How to prepare a new database for ``system``: its schema, then the clock."""
    found = resolve(system)

    def prepare(conn: psycopg.Connection[Any]) -> None:
        found.prepare(conn)
        clock.install(conn)

    return prepare


def prepare(conn: psycopg.Connection[Any]) -> None:
    """Bring a new database to the default system's schema and install the clock."""
    preparer()(conn)
