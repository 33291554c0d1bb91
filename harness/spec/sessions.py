"""The libpq connections of a spec run, as isolationtester holds them: a control
connection (the global setup and teardown, and the question whether a step waits on
a lock) and one per session, opened side by side; PQexec within the step bound;
the sessions' setups and teardowns; output as bytes, to isolationtester's stdout
(``Sink.out``) and stderr (``Sink.err``), and to a :class:`racesim.spec.history.Recorder`
when the run is recorded. :mod:`racesim.spec.run` steps the permutations on them.
"""

from __future__ import annotations

import contextlib
import re
import select
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import psycopg
from psycopg import pq
from psycopg.pq.abc import PGconn, PGresult

from racesim.spec.parse import PermutationStep, Spec, Step
from racesim.spec.table import write

if TYPE_CHECKING:
    from racesim.spec.history import Recorder

__all__ = ["Bound", "Conn", "Sessions", "Sink", "SpecAborted", "connect_all", "encoded", "table"]


CONNECT_TIMEOUT = 60.0

# Session setups and teardowns made only of these touch nothing another session sees.
_LOCAL_SETUP = re.compile(
    r"\s*(?:(?:BEGIN|START\s+TRANSACTION|SET)\b[^;\"$]*;\s*)*"
    r"(?:(?:BEGIN|START\s+TRANSACTION|SET)\b[^;\"$]*)?;?\s*",
    re.IGNORECASE,
)

_LOCAL_TEARDOWN = re.compile(
    r"\s*(?:(?:ROLLBACK|ABORT|RESET|UNLISTEN)\b[^;\"$]*;\s*)*"
    r"(?:(?:ROLLBACK|ABORT|RESET|UNLISTEN)\b[^;\"$]*)?;?\s*",
    re.IGNORECASE,
)
_LOOK_MS = 100
"""Longest look at a connection without the interpreter running (a signal's handler
runs between looks, so SIGTERM and Ctrl-C stop racesim whatever it waits for)."""

_BLOCKED_SQL = b"SELECT pg_catalog.pg_isolation_test_session_is_blocked($1::int, $2::int[])"

_APPNAME_SQL = (
    b"SELECT set_config('application_name',\n"
    b"  current_setting('application_name') || '/' || $1,\n  false)"
)


class SpecAborted(Exception):
    """The spec stopped where isolationtester exits with status 1 (message already printed)."""


@dataclass
class Sink:
    out: Callable[[bytes], object]
    err: Callable[[bytes], object]
    record: Recorder | None = None
    """Where the run is recorded as racesim's events (:mod:`racesim.spec.history`)."""


def encoded(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


_COPY = (pq.ExecStatus.COPY_IN, pq.ExecStatus.COPY_OUT, pq.ExecStatus.COPY_BOTH)


@dataclass
class Bound:
    """When a wait began, and whether its query was canceled for running past the bound."""

    started: float
    canceled: bool = False


@dataclass
class Conn:
    pg: PGconn
    name: str
    pid: int = 0
    active: PermutationStep | None = None
    active_step: Step | None = None
    notices: int = 0
    poll: select.poll = field(default_factory=select.poll)


class Sessions:
    """The connections of one spec run, and what isolationtester does on them besides
    stepping a permutation."""

    def __init__(self, spec: Spec, sink: Sink, step_timeout: float) -> None:
        self.spec = spec
        self.sink = sink
        self.max_wait = step_timeout
        self.conns: list[Conn] = []
        self.any_new_notice = False
        self.start = time.monotonic()
        self.pids = b""

    def out(self, data: bytes) -> None:
        self.sink.out(data)

    def err(self, data: bytes) -> None:
        self.sink.err(data)
        if self.sink.record is not None:
            self.sink.record.problem(data.decode("utf-8", "replace").rstrip("\n"))

    def abort(self, message: bytes) -> SpecAborted:
        self.err(message)
        return SpecAborted(message.decode("utf-8", "replace").strip())

    def connect(self, conninfo: str) -> None:
        """Open the control connection and one per session, all at once (isolationtester
        opens them one after the other; the outcome is the same)."""
        names = ["control connection"] + [s.name for s in self.spec.sessions]
        pgs = connect_all(conninfo, len(names), CONNECT_TIMEOUT)
        for name, pg in zip(names, pgs, strict=True):
            conn = Conn(pg, name)
            self.conns.append(conn)
        for i, conn in enumerate(self.conns):
            pg = conn.pg
            if pg.status != pq.ConnStatus.OK:
                raise self.abort(b"Connection %d failed: %s" % (i, pg.error_message))
            pg.notice_handler = self._blackhole if i == 0 else self._notice_for(conn)
            pg.send_query_params(_APPNAME_SQL, [encoded(conn.name)])
        for conn in self.conns:
            pg = conn.pg
            failed = False
            while (res := pg.get_result()) is not None:
                failed = failed or res.status != pq.ExecStatus.TUPLES_OK
            if failed:
                raise self.abort(b"setting of application name failed: %s" % pg.error_message)
            conn.pid = pg.backend_pid
            conn.poll.register(pg.socket, select.POLLIN)
        self.pids = ("{" + ",".join(str(c.pid) for c in self.conns[1:]) + "}").encode()

    def close(self) -> None:
        for conn in self.conns:
            conn.pg.finish()

    @staticmethod
    def _blackhole(res: PGresult) -> None:
        return None

    def _notice_for(self, conn: Conn) -> Callable[[PGresult], None]:
        prefix = encoded(conn.name) + b": "

        def notice(res: PGresult) -> None:
            message = res.error_message
            self.out(prefix + message)
            conn.notices += 1
            self.any_new_notice = True
            if self.sink.record is not None and conn.active_step is not None:
                self.sink.record.notice(conn.name, message.decode("utf-8", "replace").strip())

        return notice

    def exec_print(self, conn: Conn, sql: str, failure: bytes, fatal: bool) -> None:
        res = self.execute(conn, encoded(sql), failure.removesuffix(b" failed: "))
        self.print_last(conn, res, failure, fatal)

    def print_last(self, conn: Conn, res: PGresult | None, failure: bytes, fatal: bool) -> None:
        """Print PQexec's answer as isolationtester does: its table, or its failure."""
        if res is not None and res.status == pq.ExecStatus.TUPLES_OK:
            table(res, self.out)
        elif res is None or res.status != pq.ExecStatus.COMMAND_OK:
            message = failure + conn.pg.error_message
            if fatal:
                raise self.abort(message)
            self.err(message)

    def execute(
        self, conn: Conn, sql: bytes, what: bytes, params: list[bytes | None] | None = None
    ) -> PGresult | None:
        """PQexec (with ``params``, PQexecParams: one statement) within the step bound:
        its last result, or None when the query could not be sent."""
        try:
            if params is None:
                conn.pg.send_query(sql)
            else:
                conn.pg.send_query_params(sql, params)
        except psycopg.OperationalError:
            return None
        return self.last_result(conn, what)

    def last_result(self, conn: Conn, what: bytes) -> PGresult | None:
        """The rest of PQexec for a query already sent: every result read, the last one
        returned (a COPY state stops it, as in PQexec)."""
        bound = Bound(time.monotonic())
        last = None
        while True:
            res = self.next_result(conn, what, bound)
            if res is None:
                return last
            last = res
            if res.status in _COPY:
                return last

    def next_result(self, conn: Conn, what: bytes, bound: Bound) -> PGresult | None:
        """PQgetResult, waited for within the bound (see :meth:`ready`)."""
        self.ready(conn, what, bound)
        return conn.pg.get_result()

    def ready(self, conn: Conn, what: bytes, bound: Bound) -> None:
        """Wait until ``conn``'s next result can be read without blocking.

        isolationtester waits for ever here (PQexec); racesim cancels the query once
        it ran past the step bound and gives up (status 1, as a step past twice its
        bound) past twice the bound. It looks at least every 100 ms, so a signal's
        handler runs and SIGTERM or Ctrl-C stop racesim at once."""
        pg = conn.pg
        while pg.is_busy():
            if conn.poll.poll(_LOOK_MS):
                self.consume(conn)
                continue
            elapsed = time.monotonic() - bound.started
            if elapsed > 2 * self.max_wait:
                raise self.abort(b"racesim: %s timed out after %d seconds\n" % (what, int(elapsed)))
            if elapsed > self.max_wait and not bound.canceled:
                bound.canceled = True
                try:
                    pg.get_cancel().cancel()
                except psycopg.OperationalError as exc:
                    self.err(b"PQcancel failed: %s\n" % str(exc).encode())
                else:
                    self.err(
                        b"racesim: canceling %s after %d seconds (the step bound)\n"
                        % (what, int(elapsed))
                    )

    def unwind(self) -> None:
        """Cancel what runs, roll every session back and run the teardown, quietly."""
        out, err, record = self.sink.out, self.sink.err, self.sink.record
        self.sink.out = self.sink.err = lambda data: None
        self.sink.record = None
        try:
            for conn in self.conns[1:]:
                what = b"rollback of session " + encoded(conn.name)
                if conn.active is not None:
                    with contextlib.suppress(psycopg.OperationalError):
                        conn.pg.get_cancel().cancel()
                    with contextlib.suppress(psycopg.OperationalError):
                        self.last_result(conn, what)
                    conn.active = conn.active_step = None
                self.execute(conn, b"ROLLBACK", what)
            self.teardown()
        finally:
            self.sink.out, self.sink.err, self.sink.record = out, err, record

    def per_session(self, what: str, *, fatal: bool) -> None:
        """Every session's setup (or teardown), in session order, as isolationtester runs
        them. When each is only session-local statements (BEGIN, SET, ROLLBACK, ...),
        they are sent side by side and their results read in order: the same output,
        one round trip instead of one per session."""
        todo = [
            (self.conns[i + 1], sql)
            for i, session in enumerate(self.spec.sessions)
            if (sql := session.setup if what == "setup" else session.teardown) is not None
        ]
        local = _LOCAL_SETUP if what == "setup" else _LOCAL_TEARDOWN
        side_by_side = len(todo) > 1 and all(local.fullmatch(sql) for _, sql in todo)
        if side_by_side:
            for conn, sql in todo:
                conn.pg.send_query(encoded(sql))
        for conn, sql in todo:
            failure = b"%s of session %s failed: " % (what.encode(), encoded(conn.name))
            if side_by_side:
                self.read_print(conn, failure, fatal)
            else:
                self.exec_print(conn, sql, failure, fatal)

    def read_print(self, conn: Conn, failure: bytes, fatal: bool) -> None:
        """The rest of ``exec_print`` for SQL already sent: PQexec's last result counts."""
        last = self.last_result(conn, failure.removesuffix(b" failed: "))
        self.print_last(conn, last, failure, fatal)

    def teardown(self) -> None:
        control = self.conns[0]
        self.per_session("teardown", fatal=False)
        if self.spec.teardown is not None:
            self.exec_print(control, self.spec.teardown, b"teardown failed: ", fatal=False)

    def consume(self, conn: Conn) -> None:
        try:
            conn.pg.consume_input()
        except psycopg.OperationalError:
            raise self.abort(b"PQconsumeInput failed: %s\n" % conn.pg.error_message) from None

    def blocked(self, conn: Conn) -> bool:
        control = self.conns[0].pg
        res = control.exec_params(_BLOCKED_SQL, [str(conn.pid).encode(), self.pids])
        if res.status != pq.ExecStatus.TUPLES_OK or res.ntuples != 1:
            raise self.abort(b"lock wait query failed: %s" % control.error_message)
        return (res.get_value(0, 0) or b"f")[:1] == b"t"

    def blockers(self, conn: Conn) -> tuple[str, ...]:
        """The sessions ``conn`` waits on (only asked for events: it is one more query)."""
        if self.sink.record is None:
            return ()
        res = self.conns[0].pg.exec_params(
            b"SELECT unnest(pg_catalog.pg_blocking_pids($1::int))", [str(conn.pid).encode()]
        )
        if res.status != pq.ExecStatus.TUPLES_OK:
            return ()
        pids = [int(res.get_value(i, 0) or b"0") for i in range(res.ntuples)]
        names = {c.pid: c.name for c in self.conns[1:]}
        return tuple(names.get(pid, f"pid {pid}") for pid in pids)


def connect_all(conninfo: str, count: int, timeout: float) -> list[PGconn]:
    """``count`` connections, established side by side (libpq's non-blocking connect).

    Interrupted (a signal, see :mod:`racesim.provision.connecting`), it closes the
    connections at once: a backend left waiting in authentication would hold up the
    ``DROP DATABASE`` of the cleanup until the server's authentication_timeout.
    """
    pgs: list[PGconn] = []
    try:
        for _ in range(count):
            pgs.append(pq.PGconn.connect_start(conninfo.encode()))
        return _establish(pgs, timeout)
    except BaseException:
        for pg in pgs:
            pg.finish()
        raise


def _establish(pgs: list[PGconn], timeout: float) -> list[PGconn]:
    count = len(pgs)
    status = {i: pq.PollingStatus.WRITING for i in range(count)}
    deadline = time.monotonic() + timeout
    while True:
        for i in list(status):
            if pgs[i].status == pq.ConnStatus.BAD:
                del status[i]
                continue
            if status[i] in (pq.PollingStatus.OK, pq.PollingStatus.FAILED):
                del status[i]
        if not status:
            return pgs
        poller = select.poll()
        for i, st in status.items():
            poller.register(
                pgs[i].socket, select.POLLIN if st == pq.PollingStatus.READING else select.POLLOUT
            )
        left = deadline - time.monotonic()
        if left <= 0:
            for i in status:
                pgs[i].finish()
            raise SpecAborted("connecting timed out")
        ready = {fd for fd, _ in poller.poll(min(left, 1.0) * 1000)}
        for i in list(status):
            if pgs[i].socket in ready:
                status[i] = pq.PollingStatus(pgs[i].connect_poll())


def table(res: PGresult, out: Callable[[bytes], object]) -> None:
    """Print ``res`` as PQprint does, a piece at a time, straight from the result."""
    names = [res.fname(j) or b"" for j in range(res.nfields)]
    columns = range(res.nfields)

    def rows() -> Iterator[list[bytes | None]]:
        for i in range(res.ntuples):
            yield [res.get_value(i, j) for j in columns]

    write(names, rows, out)
