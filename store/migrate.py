"""The reference schema's three migrations and a runner that moves between versions.

Each migration is a pair of SQL files under ``store/migrations`` named
``NNN_purpose.up.sql`` / ``NNN_purpose.down.sql``. The applied version is kept in
``racesim_schema_version`` (one row), so ``migrate(conn, to=N)`` knows which
steps to run up or down. Each step runs in its own transaction.

>>> migrate(conn, to=3)   # doctest: +SKIP
>>> migrate(conn, to=2)   # the owner column is dropped again
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Any

import psycopg

LATEST = 3


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    up: str
    down: str


def _load() -> tuple[Migration, ...]:
    folder = resources.files("racesim.store") / "migrations"
    ups = sorted(p.name for p in folder.iterdir() if p.name.endswith(".up.sql"))
    found = []
    for up_name in ups:
        stem = up_name.removesuffix(".up.sql")
        number, _, name = stem.partition("_")
        found.append(
            Migration(
                version=int(number),
                name=name,
                up=(folder / up_name).read_text(),
                down=(folder / f"{stem}.down.sql").read_text(),
            )
        )
    return tuple(found)


MIGRATIONS = _load()


def current_version(conn: psycopg.Connection[Any]) -> int:
    """The schema version applied to the connected database (0 when none)."""
    row = conn.execute("SELECT to_regclass('racesim_schema_version') IS NOT NULL").fetchone()
    if not row or not row[0]:
        return 0
    got = conn.execute("SELECT version FROM racesim_schema_version").fetchone()
    return int(got[0]) if got else 0


def migrate(conn: psycopg.Connection[Any], to: int = LATEST) -> int:
    """Apply up or down steps until the database is at version ``to``; return it."""
    if not 0 <= to <= len(MIGRATIONS):
        raise ValueError(f"migration version must be 0..{len(MIGRATIONS)}, got {to}")
    with conn.transaction():
        conn.execute(
            "CREATE TABLE IF NOT EXISTS racesim_schema_version ("
            " id INT PRIMARY KEY DEFAULT 1 CHECK (id = 1), version INT NOT NULL)"
        )
        conn.execute(
            "INSERT INTO racesim_schema_version (id, version) VALUES (1, 0)"
            " ON CONFLICT (id) DO NOTHING"
        )
    at = current_version(conn)
    if at > len(MIGRATIONS):
        raise ValueError(
            f"database is at schema version {at}, newer than this racesim knows (0..{LATEST})"
        )
    while at != to:
        step = MIGRATIONS[at] if at < to else MIGRATIONS[at - 1]
        target = at + 1 if at < to else at - 1
        with conn.transaction():
            conn.execute(step.up if at < to else step.down)
            conn.execute("UPDATE racesim_schema_version SET version = %s", (target,))
        at = target
    return at
