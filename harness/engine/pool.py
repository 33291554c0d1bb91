"""Sessions kept across runs, so a run costs its statements and not its connections.

Between runs ``reset`` puts everything back: the state row and the virtual clock
to their fresh values, every session out of any transaction, its advisory locks
released and its settings back to the defaults. Sessions a run closed (a crash)
are replaced with new ones.
"""

from __future__ import annotations

from typing import Any

import psycopg

from racesim.engine.sessions import Worker, configure, connect
from racesim.store import SCHEMA_VERSION, migrate

RESET_SESSION = (
    "ROLLBACK; SELECT pg_advisory_unlock_all(); RESET lock_timeout; RESET statement_timeout"
)
RESET_STATE = (
    "UPDATE recommendations_state SET last_collected_at = NULL, last_collection_error = NULL,"
    " last_collection_started_at = NULL, last_collection_owner_id = NULL WHERE id = 1;"
    " UPDATE racesim_clock.frozen SET at = NULL WHERE id = 1"
)
RESET_STATE_NO_OWNER = (
    "UPDATE recommendations_state SET last_collected_at = NULL, last_collection_error = NULL,"
    " last_collection_started_at = NULL WHERE id = 1;"
    " UPDATE racesim_clock.frozen SET at = NULL WHERE id = 1"
)


class SessionPool:
    """A monitor session and actor sessions on one database, for one store's schema."""

    def __init__(self, conninfo: str, store: str) -> None:
        self.conninfo = conninfo
        self.monitor = connect(conninfo, application_name="racesim-monitor")
        migrate(self.monitor, to=SCHEMA_VERSION[store])
        self._reset_state = RESET_STATE if SCHEMA_VERSION[store] >= 3 else RESET_STATE_NO_OWNER
        self._sessions: list[tuple[psycopg.Connection[Any], Worker]] = []
        self._dirty: set[int] = set()

    def reset(self) -> None:
        """Make the database and the sessions as good as new.

        Only sessions marked dirty (they took locks, opened a transaction or
        changed a setting) pay a round trip; the rest have nothing to undo.
        """
        for index in sorted(self._dirty):
            conn = self._sessions[index][0]
            if not conn.closed and not conn.broken:
                conn.execute(RESET_SESSION)
        self._dirty.clear()
        self.monitor.execute(self._reset_state)

    def mark_dirty(self, index: int) -> None:
        """The session at ``index`` has state to undo before the next run."""
        self._dirty.add(index)

    def session(self, index: int) -> tuple[psycopg.Connection[Any], Worker]:
        """The index-th actor session, opened on first use or after it was closed."""
        while len(self._sessions) <= index:
            self._sessions.append((self._open(), Worker(f"actor{len(self._sessions)}")))
        conn, worker = self._sessions[index]
        if conn.closed or conn.broken:
            conn = self._open()
            self._sessions[index] = (conn, worker)
        return conn, worker

    def _open(self) -> psycopg.Connection[Any]:
        conn = connect(self.conninfo, application_name="racesim-actor")
        configure(conn)
        return conn

    def reconnect(self) -> psycopg.Connection[Any]:
        """After a server restart every session is gone: a new monitor, actors on demand."""
        for conn, _ in self._sessions:
            conn.close()
        self._dirty.clear()
        self.monitor.close()
        self.monitor = connect(self.conninfo, application_name="racesim-monitor")
        return self.monitor

    def close(self) -> None:
        for conn, worker in self._sessions:
            worker.stop()
            conn.close()
        self._sessions.clear()
        self.monitor.close()

    def __enter__(self) -> SessionPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
