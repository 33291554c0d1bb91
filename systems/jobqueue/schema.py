"""The job queue's schema: two migrations, a runner, and the reset between runs.

Each migration is a pair of SQL files under ``migrations/`` named
``NNN_purpose.up.sql`` / ``NNN_purpose.down.sql``; the applied version is kept
in ``jobqueue_schema_version`` (one row). Each step runs in its own transaction.

>>> migrate(conn)          # doctest: +SKIP
>>> migrate(conn, to=1)    # doctest: +SKIP  (job_results is dropped again)
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Any

import psycopg
from psycopg import sql

VERSION_TABLE = "jobqueue_schema_version"
_TABLE = sql.Identifier(VERSION_TABLE)


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    up: str
    down: str


def _load() -> tuple[Migration, ...]:
    folder = resources.files(__package__ or "racesim.systems.jobqueue") / "migrations"
    found = []
    for up_name in sorted(p.name for p in folder.iterdir() if p.name.endswith(".up.sql")):
        stem = up_name.removesuffix(".up.sql")
        number, _, name = stem.partition("_")
        found.append(
            Migration(
                int(number),
                name,
                (folder / up_name).read_text(),
                (folder / f"{stem}.down.sql").read_text(),
            )
        )
    return tuple(found)


MIGRATIONS = _load()
LATEST = len(MIGRATIONS)

RESET = "TRUNCATE job_results, jobs RESTART IDENTITY"
"""Back to an empty queue, job ids starting at 1 again."""


def current_version(conn: psycopg.Connection[Any]) -> int:
    """The schema version applied to the connected database (0 when none)."""
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (VERSION_TABLE,)).fetchone()
    if not row or not row[0]:
        return 0
    got = conn.execute(sql.SQL("SELECT version FROM {}").format(_TABLE)).fetchone()
    return int(got[0]) if got else 0


def migrate(conn: psycopg.Connection[Any], to: int = LATEST) -> int:
    """Apply up or down steps until the database is at version ``to``; return it."""
    if not 0 <= to <= LATEST:
        raise ValueError(f"job queue schema version must be 0..{LATEST}, got {to}")
    with conn.transaction():
        conn.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} ("
                " id INT PRIMARY KEY DEFAULT 1 CHECK (id = 1), version INT NOT NULL)"
            ).format(_TABLE)
        )
        conn.execute(
            sql.SQL(
                "INSERT INTO {} (id, version) VALUES (1, 0) ON CONFLICT (id) DO NOTHING"
            ).format(_TABLE)
        )
    at = current_version(conn)
    if at > LATEST:
        raise ValueError(
            f"database is at job queue schema version {at}, newer than this racesim knows"
            f" (0..{LATEST})"
        )
    while at != to:
        step = MIGRATIONS[at] if at < to else MIGRATIONS[at - 1]
        target = at + 1 if at < to else at - 1
        with conn.transaction():
            conn.execute(step.up if at < to else step.down)
            conn.execute(sql.SQL("UPDATE {} SET version = %s").format(_TABLE), (target,))
        at = target
    return at


def reset(conn: psycopg.Connection[Any]) -> None:
    """Empty the queue between runs on the same database."""
    conn.execute(RESET)
