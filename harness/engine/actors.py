"""One actor: a run of a caller's program on its own session, one call at a time.

The engine decides *when* a run steps; a ``Run`` knows *how*: which function a
call becomes on its session, how a result or an error goes back into the
program, and what a crash takes away with it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from racesim.engine.commit_steps import commit_step
from racesim.engine.sessions import Worker
from racesim.model.history import NOT_COMPARED
from racesim.model.plan import SESSION_SETTINGS as SESSION_SETTINGS
from racesim.model.plan import Actor
from racesim.system import Call, ProgramRun

Reply = tuple[bool, Any]
"""(True, value) when a call returned, (False, exception) when it raised."""


@dataclass
class Run:
    """One execution of a program: its session, its store, and where it is."""

    index: int
    actor: Actor
    store: Any
    """The object the variant opened for this run (``db`` calls are its methods)."""
    program: ProgramRun
    seed: int
    conn: psycopg.Connection[Any] | None = None
    worker: Worker | None = None
    pid: int = 0
    shadow: Any = None
    """The model's session run beside this one, for the model-agreement check."""
    next_call: Call | None = None
    finished: str | None = None
    """The program's answer once it has ended."""
    pending: Call | None = None
    """The call the session is waiting in (blocked in PostgreSQL)."""
    pending_label: str = ""
    pending_line: int | None = None
    closed: bool = False
    started: bool = False
    """True once the run has sent its first call: a restart then crashes it."""
    in_txn: bool = False
    """The session is inside a transaction (after a ``sql`` step): it may hold locks."""
    blocked_after: float = 0.0
    blocked_by: tuple[str, ...] = ()
    """The runs its waiting call was seen waiting on."""
    sent_at: float = 0.0
    """When its last call was sent (``time.perf_counter()``)."""
    held: Reply | None = None
    """The waiting call's reply, taken before the schedule reached its completion."""
    closed_cycle: bool = False
    """Its waiting call closed a cycle of waits, which the server's deadlock check ends."""
    split: bool = False
    """The ``sql`` call being sent runs as ``BEGIN`` and its statement; its ``COMMIT``
    is the run's next step (``commit_steps``)."""
    statement: Reply | None = None
    """A split statement's reply, handed to the program once its commit step has ended."""

    @property
    def name(self) -> str:
        return self.actor.name

    def advance(self, error: BaseException | None, value: Any) -> None:
        """Hand the last call's outcome to the program and fetch its next call."""
        try:
            if error is not None:
                self.next_call = self.program.throw(error)
            elif self.next_call is None and self.finished is None and not self.closed:
                self.next_call = next(self.program)
            else:
                self.next_call = self.program.send(value)
        except StopIteration as stop:
            self.next_call, self.finished = None, str(stop.value)
        except Exception as exc:
            self.next_call, self.finished = None, f"error: {describe(exc)}"

    def job(self, call: Call) -> Callable[[], Any]:
        """The call as a function to run on the session's worker thread."""
        if call.kind == "sql":
            conn, text, begin = self.conn, call.sql, self.split
            assert conn is not None

            def run_sql() -> str:  # the fixed text of a program
                if begin:
                    conn.execute("BEGIN")
                return statement_result(conn.execute(text))

            return run_sql
        method = getattr(self.store, call.name)
        return lambda: method(*call.args)

    def answer(self, call: Call, reply: Reply) -> None:
        """Hand the call's reply to the program and fetch its next call. A split
        statement's reply waits for its commit step, which comes next; the program
        then gets the statement's result or error, or the commit's error."""
        ok, value = reply
        if self.split:
            self.split, self.statement = False, reply
            self.next_call = commit_step(call)
            return
        if self.statement is not None:
            statement, self.statement = self.statement, None
            if ok or not statement[0]:
                ok, value = statement
        self.advance(None if ok else value, value if ok else None)

    def note_transaction(self, call: Call) -> None:
        """After a ``sql`` step, remember whether the session is inside a transaction."""
        if call.kind == "sql" and self.conn is not None and not self.conn.closed:
            status = self.conn.info.transaction_status
            self.in_txn = status != psycopg.pq.TransactionStatus.IDLE

    def model_result(self, call: Call) -> tuple[Any, str | None]:
        """What the model session says to the same call (or NOT_COMPARED)."""
        if self.shadow is None or call.kind != "db" or call.fault:
            return NOT_COMPARED, None
        ok, value = direct(self.shadow, call)
        return (value, None) if ok else (None, describe(value))

    def step_pid(self) -> int:
        """The backend the run's current step runs on: the store's ``backend_pid()``
        when it has one (a command's client connection), else the run's session."""
        pid = getattr(self.store, "backend_pid", None)
        return (pid() or self.pid) if callable(pid) else self.pid

    def backend_pids(self) -> tuple[int, ...]:
        """Every backend of the run: its session, and the store's ``backend_pids()`` if any."""
        pids = getattr(self.store, "backend_pids", None)
        return (self.pid, *pids()) if callable(pids) else (self.pid,)

    def waits_in_server(self) -> bool:
        """True while its waiting call has not replied (it may still wait on a lock)."""
        return self.pending is not None and self.held is None

    def reply(self, timeout: float) -> Reply | None:
        """The waiting call's reply: the one held, or the worker's within ``timeout``."""
        held, self.held = self.held, None
        if held is not None:
            return held
        return self.worker.reply(timeout) if self.worker is not None else None

    def stop(self) -> None:
        """The store's ``stop()``, if any: it ends what it started (a command's process)."""
        stop = getattr(self.store, "stop", None)
        if callable(stop):
            stop()

    def end_session(self) -> None:
        """Close the run's session: its locks go with it (the model's too)."""
        self.closed, self.in_txn = True, False
        _close(self.store)
        if self.conn is not None:
            self.conn.close()
        if self.shadow is not None:
            _close(self.shadow)

    def crash(self, why: str) -> None:
        """The run's process is gone: no further steps, no deferred work."""
        self.pending = self.next_call = self.statement = None
        self.split = False
        self.finished = self.finished or why
        self.program.close()
        self.end_session()


def apply_session_options(conn: psycopg.Connection[Any], actor: Actor) -> bool:
    """SET the actor's session options; True when it set any."""
    changed = False
    for name in SESSION_SETTINGS:
        if name in actor.options:
            conn.execute(
                sql.SQL("SET {} = {}").format(
                    sql.Identifier(name), sql.Literal(str(actor.options[name]))
                )
            )
            changed = True
    return changed


def _close(store: Any) -> None:
    close = getattr(store, "close", None)
    if callable(close):
        close()


_VOID = 2278
"""The type oid of ``void`` (what ``pg_advisory_xact_lock`` returns)."""


def statement_result(cur: psycopg.Cursor[Any]) -> str:
    """What a fixed statement returned, as text: its command status, then any rows
    as ``column=value`` (``SELECT 1: id=1``; a void function's value shows as ``void``)."""
    status = cur.statusmessage or ""
    if cur.description is None:
        return status
    columns = cur.description
    rows = [
        " ".join(
            f"{c.name}={'void' if c.type_code == _VOID else 'null' if v is None else v}"
            for c, v in zip(columns, row, strict=True)
        )
        for row in cur.fetchall()
    ]
    return f"{status}: {'; '.join(rows)}" if rows else status


def direct(store: Any, call: Call) -> Reply:
    """Run a store call here and now, catching what it raises."""
    try:
        return True, getattr(store, call.name)(*call.args)
    except Exception as exc:
        return False, exc


def describe(exc: BaseException) -> str:
    """``ClassName: first line of the message``, as the timeline shows errors."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
