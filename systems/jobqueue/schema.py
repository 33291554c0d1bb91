"""The job queue's schema: two migrations, a runner, and the reset between runs.

Each migration is a pair of SQL files under ``migrations/`` named
``NNN_purpose.up.sql`` / ``NNN_purpose.down.sql``; the applied version is kept
in ``jobqueue_schema_version`` (one row). Each step runs in its own transaction
(the runner is ``racesim.migrations``).

>>> migrate(conn)          # doctest: +SKIP
>>> migrate(conn, to=1)    # doctest: +SKIP  (job_results is dropped again)
"""

from __future__ import annotations

from typing import Any

import psycopg

from racesim.migrations import Migration, Migrations

VERSION_TABLE = "jobqueue_schema_version"
SCHEMA = Migrations(
    "racesim.systems.jobqueue", "migrations", VERSION_TABLE, label="job queue schema"
)
MIGRATIONS = SCHEMA.steps
LATEST = SCHEMA.latest

RESET = "TRUNCATE job_results, jobs RESTART IDENTITY"
"""Back to an empty queue, job ids starting at 1 again."""


def current_version(conn: psycopg.Connection[Any]) -> int:
    """The schema version applied to the connected database (0 when none)."""
    return SCHEMA.current_version(conn)


def migrate(conn: psycopg.Connection[Any], to: int = LATEST) -> int:
    """Apply up or down steps until the database is at version ``to``; return it."""
    return SCHEMA.migrate(conn, to)


def reset(conn: psycopg.Connection[Any]) -> None:
    """Empty the queue between runs on the same database."""
    conn.execute(RESET)


__all__ = [
    "LATEST",
    "MIGRATIONS",
    "RESET",
    "SCHEMA",
    "VERSION_TABLE",
    "Migration",
    "current_version",
    "migrate",
    "reset",
]
