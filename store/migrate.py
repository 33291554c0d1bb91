"""The reference schema's three migrations, and the runner that moves between versions.

Each migration is a pair of SQL files under ``store/migrations`` named
``NNN_purpose.up.sql`` / ``NNN_purpose.down.sql``. The applied version is kept in
``racesim_schema_version`` (one row), so ``migrate(conn, to=N)`` knows which
steps to run up or down. Each step runs in its own transaction (the runner is
``racesim.migrations``).

>>> migrate(conn, to=3)   # doctest: +SKIP
>>> migrate(conn, to=2)   # the owner column is dropped again
"""

from __future__ import annotations

from typing import Any

import psycopg

from racesim.migrations import Migration, Migrations

SCHEMA = Migrations("racesim.store", "migrations", "racesim_schema_version")
MIGRATIONS = SCHEMA.steps
LATEST = SCHEMA.latest


def current_version(conn: psycopg.Connection[Any]) -> int:
    """The schema version applied to the connected database (0 when none)."""
    return SCHEMA.current_version(conn)


def migrate(conn: psycopg.Connection[Any], to: int = LATEST) -> int:
    """Apply up or down steps until the database is at version ``to``; return it."""
    return SCHEMA.migrate(conn, to)


__all__ = ["LATEST", "MIGRATIONS", "SCHEMA", "Migration", "current_version", "migrate"]
