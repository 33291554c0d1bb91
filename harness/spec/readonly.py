"""Invariant queries, run so that they can only look: in a ``READ ONLY`` transaction,
under a statement timeout of the step bound, reading at most :data:`MAX_ROWS` rows.

An invariant that writes (a data-modifying ``WITH``, a function that updates) fails
instead of changing what it checks; one that runs too long is canceled by the
server; one that returns millions of rows costs no more memory than 1,000 do (the
rows are read one at a time and the query canceled past the limit).

Two ways in, one rule: :func:`on_runner` for the libpq control connection of the
isolationtester-faithful runner, :func:`on_connection` for a psycopg connection
(a spec's system, watched by racesim's engine).

Example::

    answer = on_connection(conn, "SELECT seat FROM seats GROUP BY seat HAVING count(*) > 1", 10.0)
    answer.count, answer.more, answer.rows  # (0, False, ()) while it holds
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import errors, pq, sql

from racesim.engine.sessions import note_sent
from racesim.spec.sessions import Bound

if TYPE_CHECKING:
    from racesim.spec.sessions import Sessions

__all__ = ["MAX_ROWS", "ROWS_SHOWN", "Answer", "Failed", "on_connection", "on_runner"]

MAX_ROWS = 1000
"""Rows of an invariant's answer that are read; past them it is "1000 or more rows"."""
ROWS_SHOWN = 5
"""Rows of an answer kept to show."""

_READ_ONLY = sql.SQL("SET TRANSACTION READ ONLY")
_TIMEOUT = sql.SQL("SET LOCAL statement_timeout = {}")
_QUERY_CANCELED = errors.QueryCanceled.sqlstate
_READ_ONLY_TRANSACTION = errors.ReadOnlySqlTransaction.sqlstate


@dataclass(frozen=True)
class Answer:
    """What an invariant query returned: the first rows (``|``-joined) and how many."""

    rows: tuple[str, ...] = ()
    count: int = 0
    more: bool = False
    """True when it returned more than :data:`MAX_ROWS` (``count`` is then that)."""

    def how_many(self) -> str:
        """``"3 rows"``, ``"1 row"`` or ``"1000 or more rows"``."""
        if self.more:
            return f"{MAX_ROWS} or more rows"
        return f"{self.count} row" + ("" if self.count == 1 else "s")


class Failed(Exception):
    """The query failed: ``sqlstate`` and the server's message."""

    def __init__(self, sqlstate: str, message: str) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate
        self.message = message

    @property
    def wrote(self) -> bool:
        return self.sqlstate == _READ_ONLY_TRANSACTION

    @property
    def timed_out(self) -> bool:
        return self.sqlstate == _QUERY_CANCELED


def _row(values: list[bytes | None] | tuple[Any, ...]) -> str:
    return "|".join(
        "" if v is None else v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
        for v in values
    )


def _milliseconds(bound: float) -> int:
    return max(1, int(bound * 1000))


def on_runner(runner: Sessions, query: str, what: bytes) -> Answer:
    """``query`` on the runner's control connection, read-only, within its step bound."""
    control = runner.conns[0]
    pg = control.pg
    outer = pg.transaction_status != pq.TransactionStatus.IDLE
    # Inside a transaction the spec's setup left open, a savepoint keeps it as it was.
    begin = b"SAVEPOINT racesim_check" if outer else b"BEGIN"
    end = (
        b"ROLLBACK TO SAVEPOINT racesim_check; RELEASE SAVEPOINT racesim_check"
        if outer
        else b"ROLLBACK"
    )
    timeout = _TIMEOUT.format(sql.Literal(_milliseconds(runner.max_wait))).as_bytes(None)
    opened = runner.execute(control, b"; ".join((begin, _READ_ONLY.as_bytes(None), timeout)), what)
    try:
        if opened is None or opened.status != pq.ExecStatus.COMMAND_OK:
            raise _failed(opened, pg.error_message)
        return _read(runner, query, what)
    finally:
        runner.execute(control, end, what)


def _read(runner: Sessions, query: str, what: bytes) -> Answer:
    control = runner.conns[0]
    pg = control.pg
    # The extended protocol runs one statement; rows come one at a time.
    pg.send_query_params(query.encode("utf-8", "surrogateescape"), [])
    pg.set_single_row_mode()
    bound = Bound(time.monotonic())
    shown: list[str] = []
    count, more = 0, False
    failure: Failed | None = None
    while (res := runner.next_result(control, what, bound)) is not None:
        if res.status == pq.ExecStatus.SINGLE_TUPLE:
            if more:
                continue
            count += 1
            if count > MAX_ROWS:
                more, count = True, MAX_ROWS
                with contextlib.suppress(psycopg.OperationalError):  # else read to the end
                    pg.get_cancel().cancel()  # the rest is not read
                continue
            if len(shown) < ROWS_SHOWN:
                shown.append(_row([res.get_value(0, j) for j in range(res.nfields)]))
        elif res.status == pq.ExecStatus.FATAL_ERROR and not more:
            failure = failure or _failed(res, pg.error_message)
    if failure is not None:
        raise failure
    return Answer(tuple(shown), count, more)


def _failed(res: pq.abc.PGresult | None, fallback: bytes) -> Failed:
    if res is None:
        return Failed("", fallback.decode("utf-8", "replace").strip())
    state = (res.error_field(pq.DiagnosticField.SQLSTATE) or b"").decode("ascii", "replace")
    message = (res.error_field(pq.DiagnosticField.MESSAGE_PRIMARY) or b"").decode(
        "utf-8", "replace"
    ) or (res.error_message or fallback).decode("utf-8", "replace").strip()
    return Failed(state, message or f"the query gave {pq.ExecStatus(res.status).name}")


class _Stop(Exception):
    pass


def on_connection(conn: psycopg.Connection[Any], query: str, bound: float) -> Answer:
    """``query`` on a psycopg connection (autocommit), read-only, within ``bound`` seconds."""
    shown: list[str] = []
    count, more = 0, False
    try:
        with conn.transaction():
            conn.execute(_READ_ONLY)
            conn.execute(_TIMEOUT.format(sql.Literal(_milliseconds(bound))))
            note_sent(conn, query)  # (streamed rows are not noted on their own)
            cur = conn.cursor()
            for row in cur.stream(query):  # the user's one query
                count += 1
                if count > MAX_ROWS:
                    more, count = True, MAX_ROWS
                    break  # psycopg cancels the rest
                if len(shown) < ROWS_SHOWN:
                    shown.append(_row(row))
            raise _Stop  # rolled back: nothing it did stays
    except _Stop:
        pass
    except psycopg.Error as exc:
        state = exc.sqlstate or ""
        message = exc.diag.message_primary or (str(exc).strip() or type(exc).__name__)
        raise Failed(state, message) from None
    return Answer(tuple(shown), count, more)
