"""What every racesim database holds: the reference schema and the virtual clock."""

from __future__ import annotations

from typing import Any

import psycopg

from racesim.engine import clock
from racesim.store import LATEST, migrate


def prepare(conn: psycopg.Connection[Any]) -> None:
    """Bring a new database to the latest reference schema and install the clock."""
    migrate(conn, to=LATEST)
    clock.install(conn)
