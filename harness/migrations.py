"""Migrations kept as SQL files in a package, and a runner that moves between versions.

Each migration is a pair of SQL files in one folder of a package, named
``NNN_purpose.up.sql`` / ``NNN_purpose.down.sql``. The applied version is kept in
a one-row table the caller names, so ``migrate(conn, to=N)`` knows which steps
to run up or down. Each step runs in its own transaction.

>>> schema = Migrations("racesim.store", "migrations", "racesim_schema_version")
>>> schema.migrate(conn, to=2)   # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Any

import psycopg
from psycopg import sql


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    up: str
    down: str


def load(package: str, folder: str) -> tuple[Migration, ...]:
    """The migrations in ``folder`` of ``package``, in version order."""
    where = resources.files(package) / folder
    found = []
    for up_name in sorted(p.name for p in where.iterdir() if p.name.endswith(".up.sql")):
        stem = up_name.removesuffix(".up.sql")
        number, _, name = stem.partition("_")
        found.append(
            Migration(
                version=int(number),
                name=name,
                up=(where / up_name).read_text(),
                down=(where / f"{stem}.down.sql").read_text(),
            )
        )
    return tuple(found)


class Migrations:
    """One package's migrations and the table that records how many are applied.

    ``label`` names the schema in error messages ("database is at <label> version 4").
    """

    def __init__(self, package: str, folder: str, table: str, *, label: str = "schema") -> None:
        self.steps = load(package, folder)
        self.table = table
        self.label = label

    @property
    def latest(self) -> int:
        return len(self.steps)

    def current_version(self, conn: psycopg.Connection[Any]) -> int:
        """The version applied to the connected database (0 when none)."""
        row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (self.table,)).fetchone()
        if not row or not row[0]:
            return 0
        got = conn.execute(sql.SQL("SELECT version FROM {}").format(self._table)).fetchone()
        return int(got[0]) if got else 0

    def migrate(self, conn: psycopg.Connection[Any], to: int) -> int:
        """Apply up or down steps until the database is at version ``to``; return it."""
        if not 0 <= to <= self.latest:
            raise ValueError(f"{self.label} version must be 0..{self.latest}, got {to}")
        with conn.transaction():
            conn.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {} ("
                    " id INT PRIMARY KEY DEFAULT 1 CHECK (id = 1), version INT NOT NULL)"
                ).format(self._table)
            )
            conn.execute(
                sql.SQL(
                    "INSERT INTO {} (id, version) VALUES (1, 0) ON CONFLICT (id) DO NOTHING"
                ).format(self._table)
            )
        at = self.current_version(conn)
        if at > self.latest:
            raise ValueError(
                f"database is at {self.label} version {at}, newer than this racesim knows"
                f" (0..{self.latest})"
            )
        while at != to:
            step = self.steps[at] if at < to else self.steps[at - 1]
            target = at + 1 if at < to else at - 1
            with conn.transaction():
                conn.execute(step.up if at < to else step.down)
                conn.execute(sql.SQL("UPDATE {} SET version = %s").format(self._table), (target,))
            at = target
        return at

    @property
    def _table(self) -> sql.Identifier:
        return sql.Identifier(self.table)
