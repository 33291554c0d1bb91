"""Actor sessions: one PostgreSQL connection per run, driven from its own thread.

A step runs on the session's worker thread so the engine can send a statement
and, without waiting for it, look from its monitor session whether PostgreSQL
has the backend waiting on a lock.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import weakref
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any, Self

import psycopg
from psycopg import pq, sql
from psycopg.abc import Params, Query

from racesim.engine.clock import SESSION_OPTIONS
from racesim.provision.connecting import connect
from racesim.provision.privileges import may_set

Reply = tuple[bool, Any]
"""(True, value) when the call returned, (False, exception) when it raised."""


STATEMENT_BOUND_MS = 11_000
"""The server's own bound on any statement of a racesim session (a session default,
so RESET keeps it): a step run without the worker thread is bounded too. A second
above the engine's step bound, which normally cancels first."""


def open_session(conninfo: str, *, application_name: str = "racesim") -> psycopg.Connection[Any]:
    """An autocommit session that follows the virtual clock."""
    return connect(
        conninfo,
        cls=NotingConnection,
        autocommit=True,
        options=f"{SESSION_OPTIONS} -c statement_timeout={STATEMENT_BOUND_MS}",
        application_name=application_name,
    )


DEADLOCK_TIMEOUT_MS = 20
"""Actor sessions detect deadlocks fast, so a deadlock is an outcome within milliseconds."""
DEADLOCK_SETTLE = (DEADLOCK_TIMEOUT_MS + 20) / 1000
"""Seconds a waiting step is given, before the engine sends any other step, for its
one deadlock check to have run (PostgreSQL checks once, ``deadlock_timeout`` after a
wait starts). So the step that closes a cycle is always the one whose check finds
it, and the same schedule always has the same deadlock victim: the closing step."""


STATEMENTS_KEPT = 32
"""Statements kept per session between steps (the last ones), so the log stays bounded."""

_STATEMENTS: weakref.WeakKeyDictionary[psycopg.Connection[Any], deque[str]] = (
    weakref.WeakKeyDictionary()
)


def _literal(conn: psycopg.Connection[Any], query: Query, params: Params | None) -> str:
    """``query`` as text with ``params`` written in as SQL literals: what ran, re-runnable."""
    if params:
        return psycopg.ClientCursor(conn).mogrify(query, params)
    text = query.as_string(conn) if isinstance(query, sql.Composable) else query
    return text.decode() if isinstance(text, bytes) else str(text)


class _NotingCursor(psycopg.Cursor[Any]):
    """Notes each statement in its session's log before sending it (for the report)."""

    def execute(
        self,
        query: Query,
        params: Params | None = None,
        *,
        prepare: bool | None = None,
        binary: bool | None = None,
    ) -> Self:
        log = _STATEMENTS.get(self.connection)
        if log is not None:
            log.append(_literal(self.connection, query, params))
        return super().execute(query, params, prepare=prepare, binary=binary)  # type: ignore[arg-type, misc]

    def executemany(self, query: Query, params_seq: Any, *, returning: bool = False) -> None:
        log = _STATEMENTS.get(self.connection)
        if log is None:
            return super().executemany(query, params_seq, returning=returning)
        params_seq = list(params_seq)
        log.extend(_literal(self.connection, query, params) for params in params_seq)
        return super().executemany(query, params_seq, returning=returning)


class NotingConnection(psycopg.Connection[Any]):
    """A connection whose ``transaction()`` blocks are noted too, as the statements
    psycopg sends for them (``BEGIN`` ... ``COMMIT``, or savepoints when nested)."""

    @contextlib.contextmanager
    def transaction(
        self, savepoint_name: str | None = None, force_rollback: bool = False
    ) -> Iterator[psycopg.Transaction]:
        log = _STATEMENTS.get(self)
        if log is None:
            with super().transaction(savepoint_name, force_rollback) as tx:
                yield tx
            return
        outer = self.info.transaction_status == pq.TransactionStatus.IDLE
        if outer:
            log.append("BEGIN")
        committed = False
        name = ""
        try:
            with super().transaction(savepoint_name, force_rollback) as tx:
                name = "" if outer else tx.savepoint_name or ""
                if name:
                    log.append(f'SAVEPOINT "{name}"')
                yield tx
                committed = not force_rollback
        finally:
            if outer:
                log.append("COMMIT" if committed else "ROLLBACK")
            elif name:
                log.append(
                    f'RELEASE "{name}"' if committed else f'ROLLBACK TO "{name}"; RELEASE "{name}"'
                )


def note_statements(conn: psycopg.Connection[Any], keep: int | None = STATEMENTS_KEPT) -> None:
    """From now on, keep the statements sent on ``conn`` (see ``sent``): the
    last ``keep`` of them, or all with None."""
    _STATEMENTS[conn] = deque(maxlen=keep)
    conn.cursor_factory = _NotingCursor


def note_sent(conn: psycopg.Connection[Any], statement: str) -> None:
    """Add ``statement`` to ``conn``'s log, for one sent over its backend by other means
    (a user's function on a gated connection over the same libpq connection)."""
    log = _STATEMENTS.get(conn)
    if log is not None:
        log.append(statement)


def sent(conn: psycopg.Connection[Any] | None, forget: bool = False) -> tuple[str, ...]:
    """The statements sent on ``conn`` since they were last forgotten, in order, each
    with its parameters written in."""
    log = _STATEMENTS.get(conn) if conn is not None else None
    if log is None:
        return ()
    found = tuple(log)
    if forget:
        log.clear()
    return found


def configure(conn: psycopg.Connection[Any]) -> None:
    """Session settings every actor gets once, when its connection opens."""
    # A role given by DSN may not (asked once, not tried: each refusal is a server
    # error); the server's own setting then applies, and racesim said so once.
    if may_set(conn, "deadlock_timeout"):
        conn.execute(sql.SQL("SET deadlock_timeout = {}").format(sql.Literal(DEADLOCK_TIMEOUT_MS)))
    note_statements(conn)


class Worker:
    """A thread that runs one call at a time for one session."""

    def __init__(self, name: str) -> None:
        self._inbox: queue.SimpleQueue[Callable[[], Any] | None] = queue.SimpleQueue()
        self._outbox: queue.SimpleQueue[Reply] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name=f"racesim-{name}", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while True:
            job = self._inbox.get()
            if job is None:
                return
            try:
                self._outbox.put((True, job()))
            except BaseException as exc:  # handed to the engine, which records it
                self._outbox.put((False, exc))

    def submit(self, job: Callable[[], Any]) -> None:
        self._inbox.put(job)

    def reply(self, timeout: float) -> Reply | None:
        """The finished call's reply, or None if it is still running after ``timeout``."""
        try:
            return self._outbox.get(timeout=timeout) if timeout > 0 else self._outbox.get_nowait()
        except queue.Empty:
            return None

    def stop(self) -> None:
        self._inbox.put(None)
        self._thread.join(timeout=5)
