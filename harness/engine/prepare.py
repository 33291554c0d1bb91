"""What every racesim database holds: the system's schema and the virtual clock."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg

from racesim.engine import clock
from racesim.system import System


def preparer(system: System) -> Callable[[psycopg.Connection[Any]], None]:
    """How to prepare a new database for ``system``: its schema, then the clock."""

    def prepare(conn: psycopg.Connection[Any]) -> None:
        system.prepare(conn)
        clock.install(conn)

    return prepare
