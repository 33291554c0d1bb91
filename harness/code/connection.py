"""Connections whose every statement waits at a run's gate.

A gated connection is a second psycopg connection object over the very libpq
connection of the run's own session (``Session.conn``): same backend, so the
engine watches its lock waits as it watches any step; its own transaction
bookkeeping, so the function sees a connection as psycopg makes one. It never
prepares statements server-side (the session's own object might use the same
names), and ``close()`` leaves the session open: the session is racesim's.
"""

from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass
from types import FrameType
from typing import Any

import psycopg
from psycopg.abc import RV, PQGen
from psycopg.pq import TransactionStatus

from racesim.code.commits import COMMIT, apart
from racesim.code.foreign import note
from racesim.code.gate import FunctionRun
from racesim.code.statements import Statement, describe_wait, own_file, user_frame
from racesim.engine.sessions import note_sent

__all__ = ["AsyncGatedConnection", "GatedConnection", "gated", "gated_async"]


@dataclass(frozen=True)
class _Arrived:
    """A statement released at the gate: its run, the object sending it, its SQL, and
    the step of its commit when it runs as two (racesim.code.commits)."""

    run: FunctionRun
    owner: Any
    text: str
    commit: Statement | None


def _arrive(conn: Any, gen: Any) -> _Arrived | None:
    """Park at the gate if ``gen`` sends a statement; None when it sends none."""
    run: FunctionRun | None = conn._racesim_run
    if run is None:
        return None
    text = describe_wait(conn, gen)
    if text is None:
        return None
    file, line = user_frame(sys._getframe(2))
    owner = gen.gi_frame.f_locals.get("self") if getattr(gen, "gi_frame", None) else None
    commit = Statement(COMMIT, file, line) if apart(conn, gen, text) else None
    run.arrive(Statement(f"BEGIN; {text}" if commit else text, file, line))
    return _Arrived(run, owner, text, commit)


def _ended(run: FunctionRun, result: Any) -> None:
    """The commit step is over: its command status (``ROLLBACK`` after an error)."""
    status = result.command_status if result is not None else None
    run.finished_statement(True, status.decode() if isinstance(status, bytes) else COMMIT)


def _status(owner: Any, text: str) -> str:
    """What the statement's step returns: its command status (``UPDATE 1``)."""
    status = getattr(owner, "statusmessage", None)
    if isinstance(status, str) and status:
        return status
    words = (
        text.split("; ", 1)[-1].split(None, 1) if text.startswith("BEGIN") else text.split(None, 1)
    )
    return words[0].upper() if words else ""


class GatedConnection(psycopg.Connection[Any]):
    """A connection whose statements each wait for the schedule."""

    _racesim_run: FunctionRun | None = None

    def wait(self, gen: PQGen[RV], interval: float = 0.1, timeout: float | None = None) -> RV:
        arrived = _arrive(self, gen)
        if arrived is None:
            return super().wait(gen, interval, timeout)
        run = arrived.run
        synced = _in_block(self)
        try:
            if arrived.commit is not None:
                super().wait(self._exec_command(b"BEGIN"), interval, timeout)
            value = super().wait(gen, interval, timeout)
            if synced and self._pipeline is not None:  # its results, in its own step
                super().wait(self._pipeline._sync_gen(), interval, timeout)
        except psycopg.Error as exc:
            run.finished_statement(False, exc)
            if arrived.commit is not None:  # the failed transaction ends at its step
                self._commit(run, arrived.commit)
            raise
        except BaseException:
            if arrived.commit is not None:  # not the server's error: end it now, as before
                with contextlib.suppress(psycopg.Error):
                    super().wait(self._exec_command(b"COMMIT"), interval, timeout)
            raise
        run.finished_statement(True, _status(arrived.owner, arrived.text))
        if arrived.commit is not None:
            self._commit(run, arrived.commit)
        return value

    def _commit(self, run: FunctionRun, commit: Statement) -> None:
        """The commit step of a statement run as two: park, send ``COMMIT``."""
        run.arrive(commit)
        try:
            result = super().wait(self._exec_command(COMMIT.encode()))
        except psycopg.Error as exc:
            run.finished_statement(False, exc)
            raise
        _ended(run, result)

    def pipeline(self) -> Any:
        """psycopg's pipeline, with a note when the function's own code opens one."""
        _pipeline_note(self, sys._getframe(1))
        return super().pipeline()

    def close(self) -> None:
        """The session is racesim's: closing the function's connection leaves it open."""

    def __del__(self, *ignored: Any) -> None:
        """Dropped with the session still open, as meant (psycopg would warn)."""


class AsyncGatedConnection(psycopg.AsyncConnection[Any]):
    """The async twin: ``await`` on a statement waits for the schedule (the run's event
    loop runs in its own thread, so parking there holds only this function)."""

    _racesim_run: FunctionRun | None = None

    async def wait(self, gen: PQGen[RV], interval: float = 0.1, timeout: float | None = None) -> RV:
        arrived = _arrive(self, gen)
        if arrived is None:
            return await super().wait(gen, interval, timeout)
        run = arrived.run
        synced = _in_block(self)
        try:
            if arrived.commit is not None:
                await super().wait(self._exec_command(b"BEGIN"), interval, timeout)
            value = await super().wait(gen, interval, timeout)
            if synced and self._pipeline is not None:  # its results, in its own step
                await super().wait(self._pipeline._sync_gen(), interval, timeout)
        except psycopg.Error as exc:
            run.finished_statement(False, exc)
            if arrived.commit is not None:  # the failed transaction ends at its step
                await self._commit(run, arrived.commit)
            raise
        except BaseException:
            if arrived.commit is not None:  # not the server's error: end it now, as before
                with contextlib.suppress(psycopg.Error):
                    await super().wait(self._exec_command(b"COMMIT"), interval, timeout)
            raise
        run.finished_statement(True, _status(arrived.owner, arrived.text))
        if arrived.commit is not None:
            await self._commit(run, arrived.commit)
        return value

    async def _commit(self, run: FunctionRun, commit: Statement) -> None:
        """The commit step of a statement run as two: park, send ``COMMIT``."""
        run.arrive(commit)
        try:
            result = await super().wait(self._exec_command(COMMIT.encode()))
        except psycopg.Error as exc:
            run.finished_statement(False, exc)
            raise
        _ended(run, result)

    def pipeline(self) -> Any:
        """psycopg's pipeline, with a note when the function's own code opens one."""
        _pipeline_note(self, sys._getframe(1))
        return super().pipeline()

    async def close(self) -> None:
        """The session is racesim's: closing the function's connection leaves it open."""

    def __del__(self, *ignored: Any) -> None:
        """Dropped with the session still open, as meant (psycopg would warn)."""


def _in_block(conn: Any) -> bool:
    """Whether a statement sent now runs in a transaction block (explicit, or the one
    psycopg begins outside autocommit): a pipeline's Sync after it then ends nothing,
    so each statement of a pipeline there is synced, its results read in its own step."""
    status = conn.pgconn.transaction_status
    return not conn.autocommit or status in (TransactionStatus.INTRANS, TransactionStatus.INERROR)


def _pipeline_note(conn: Any, caller: FrameType) -> None:
    """Say once that a pipeline the user's code opened outside a transaction is not
    stepped statement by statement: its statements form one implicit transaction, sent
    before their results are read."""
    run: FunctionRun | None = conn._racesim_run
    shown = own_file(caller.f_code.co_filename)
    if run is None or not shown or _in_block(conn):  # psycopg's own (an executemany)
        return
    note(
        run.told,
        "pipeline",
        f"the function opens a pipeline outside a transaction at {shown}:{caller.f_lineno};"
        " its statements run as one implicit transaction and reach the server before"
        " their results are read, so a lock wait of theirs shows at a later step and a"
        " run may differ by timing; fix: open the pipeline inside"
        " `with conn.transaction():` (each statement is then a step of its own)",
    )


def _adopt(
    conn: Any, session: psycopg.Connection[Any], run: FunctionRun, autocommit: bool, apart: bool
) -> None:
    handlers = (session.pgconn.notice_handler, session.pgconn.notify_handler)
    conn.prepare_threshold = None
    conn._autocommit = autocommit
    conn._racesim_commit_steps = apart
    conn._racesim_handlers = handlers
    conn._racesim_run = run
    run.on_release = lambda statement: note_sent(session, statement.sql)


def restore_handlers(conn: Any, session: psycopg.Connection[Any]) -> None:
    """Give the session back the notice and notification handlers a gated connection took."""
    handlers = getattr(conn, "_racesim_handlers", None)
    if handlers is not None and not session.closed:
        session.pgconn.notice_handler, session.pgconn.notify_handler = handlers


def gated(
    session: psycopg.Connection[Any], run: FunctionRun, autocommit: bool, apart: bool = True
) -> GatedConnection:
    """A gated connection over ``session``'s backend for ``run``; with ``apart``, an
    autocommit statement that changes data is two steps (racesim.code.commits)."""
    conn = GatedConnection(session.pgconn)
    _adopt(conn, session, run, autocommit, apart)
    return conn


def gated_async(
    session: psycopg.Connection[Any], run: FunctionRun, autocommit: bool, apart: bool = True
) -> AsyncGatedConnection:
    """An async gated connection over ``session``'s backend for ``run``."""
    conn = AsyncGatedConnection(session.pgconn)
    _adopt(conn, session, run, autocommit, apart)
    return conn
