"""Sessions kept across runs, so a run costs its statements and not its connections.

Between runs ``reset`` puts everything back: the system's state to its fresh
value (the variant's ``reset``; the engine sets the virtual clock when a run
opens), every session out of any transaction, its advisory locks released and
its settings back to the defaults. Sessions a run closed (a crash)
are replaced with new ones.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus

from racesim.engine.sessions import Worker, configure, open_session
from racesim.system import System

IDLE = TransactionStatus.IDLE
RESET_SESSION = (
    "ROLLBACK; SELECT pg_advisory_unlock_all(); RESET lock_timeout; RESET statement_timeout"
)


class SessionPool:
    """A monitor session and actor sessions on one database, for one variant's schema."""

    def __init__(self, conninfo: str, store: str, system: System) -> None:
        self.conninfo = conninfo
        self.variant = system.variant(store)
        self.monitor = open_session(conninfo, application_name="racesim-monitor")
        if self.variant.prepare is not None:
            self.variant.prepare(self.monitor)
        self._sessions: list[tuple[psycopg.Connection[Any], Worker]] = []
        self._dirty: set[int] = set()

    def reset(self) -> None:
        """Make the database and the sessions as good as new.

        Only sessions marked dirty (they took locks, opened a transaction or
        changed a setting) pay a round trip, and so does any session a stopped
        run left inside a transaction (a store call that ran ``BEGIN``: its row
        locks would hold the reset up); the rest have nothing to undo.
        """
        for index, (conn, _) in enumerate(self._sessions):
            if conn.closed or conn.broken:
                continue
            if index in self._dirty or conn.info.transaction_status != IDLE:
                conn.execute(RESET_SESSION)
        self._dirty.clear()
        if self.variant.reset is not None:
            self.variant.reset(self.monitor)

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

    def open(self, count: int) -> None:
        """Open the actor sessions up to ``count`` side by side (their connections'
        round trips overlap), for a search that will use them all; a connection
        that fails closes the others it opened and is raised."""
        missing = count - len(self._sessions)
        if missing <= 0:
            return
        with ThreadPoolExecutor(missing) as threads:
            futures = [threads.submit(self._open) for _ in range(missing)]
        failed = [e for f in futures if (e := f.exception()) is not None]
        if failed:
            for f in futures:
                if f.exception() is None:
                    f.result().close()
            raise failed[0]
        for f in futures:
            self._sessions.append((f.result(), Worker(f"actor{len(self._sessions)}")))

    def _open(self) -> psycopg.Connection[Any]:
        conn = open_session(self.conninfo, application_name="racesim-actor")
        configure(conn)
        return conn

    def reconnect(self) -> psycopg.Connection[Any]:
        """After a server restart every session is gone: a new monitor, actors on demand."""
        for conn, _ in self._sessions:
            conn.close()
        self._dirty.clear()
        self.monitor.close()
        self.monitor = open_session(self.conninfo, application_name="racesim-monitor")
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
