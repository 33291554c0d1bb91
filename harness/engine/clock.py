"""The virtual clock: time moves when the harness says so, and PostgreSQL agrees.

Design: each racesim database has a schema ``racesim_clock`` with a one-row
table holding the frozen virtual time and a function ``racesim_clock.now()``
that returns it (or ``pg_catalog.now()`` when no time is frozen). Sessions that
the harness opens put ``racesim_clock`` *before* ``pg_catalog`` in their
``search_path`` (after ``public``, so new tables still go to ``public``; there is
no ``now()`` in ``public``), so the stores' SQL keeps saying ``NOW()`` exactly as the
reference system does, and PostgreSQL itself evaluates the 5-minute window
against the virtual time. One row per database means every session of a run
sees the same time, and moving it is one UPDATE, no waiting. Time is frozen
between moves, so the same schedule always produces the same timestamps.

A schedule's labels are time points: ``T+3`` is three seconds after the start
(plus every clock move before it); unlabelled steps happen at the time of the
label before them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

EPOCH = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
"""Where every run's virtual clock starts."""

SEARCH_PATH = "public, racesim_clock, pg_catalog"
SESSION_OPTIONS = "-c search_path=public,racesim_clock,pg_catalog"
"""libpq ``options`` for a session that follows the virtual clock."""

INSTALL = """
CREATE SCHEMA IF NOT EXISTS racesim_clock;
CREATE TABLE IF NOT EXISTS racesim_clock.frozen (
    id INT PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    at TIMESTAMPTZ
);
INSERT INTO racesim_clock.frozen (id, at) VALUES (1, NULL) ON CONFLICT (id) DO NOTHING;
CREATE OR REPLACE FUNCTION racesim_clock.now() RETURNS TIMESTAMPTZ
    LANGUAGE sql STABLE
    AS $$ SELECT coalesce((SELECT at FROM racesim_clock.frozen WHERE id = 1), pg_catalog.now()) $$;
"""


def install(conn: psycopg.Connection[Any]) -> None:
    """Create the clock schema in the connected database (idempotent)."""
    with conn.transaction():
        conn.execute(INSTALL)


class VirtualClock:
    """The run's notion of now; ``advance`` moves it here and in the database."""

    def __init__(self, start: datetime = EPOCH, conn: psycopg.Connection[Any] | None = None):
        self._now = start
        self._conn = conn
        self._write()

    def rebind(self, conn: psycopg.Connection[Any]) -> None:
        """Write through a new session from now on (the old one was lost)."""
        self._conn = conn

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> datetime:
        if delta < timedelta(0):
            raise ValueError(f"the clock only moves forward, got {delta}")
        self._now += delta
        self._write()
        return self._now

    def set(self, when: datetime) -> datetime:
        """Move to ``when`` (never backwards); one write, and only if time changes."""
        if when < self._now:
            raise ValueError(f"the clock only moves forward: {when} is before {self._now}")
        if when != self._now:
            self._now = when
            self._write()
        return self._now

    def _write(self) -> None:
        if self._conn is not None:
            self._conn.execute("UPDATE racesim_clock.frozen SET at = %s WHERE id = 1", (self._now,))
