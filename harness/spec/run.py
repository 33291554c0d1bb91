"""Run a parsed spec the way isolationtester runs it, printing what it prints.

Each spec session gets its own libpq connection (psycopg's ``pq`` layer, the same
calls isolationtester makes: ``PQsendQuery``, ``PQconsumeInput``, ``PQisBusy``,
``PQgetResult``), plus a control connection for the global setup and teardown and
for asking ``pg_isolation_test_session_is_blocked`` whether a step waits on a lock.
The algorithm is isolationtester's (``run_permutation``, ``try_complete_step(s)``):
the same "<waiting ...>" and "<... completed>" decisions, marker rules, error,
notice and notification lines, setup and teardown failure handling, and step
timeouts. The one difference is speed: isolationtester looks whether a step is
blocked every 10 ms, racesim first after 1 ms (or three times the time steps that do
not wait take on this machine, if that is longer), then every 10 ms while the step
keeps running without being blocked (so a slow step costs at most one look more).

Output is bytes, through ``Sink.out`` (isolationtester's stdout) and ``Sink.err``
(its stderr). A failure isolationtester ends with exit status 1 raises
:class:`SpecAborted` after its message went to ``err``.

Example::

    spec = load("deadlock-simple.spec")
    run_spec(spec, "host=/tmp dbname=test", Sink(sys.stdout.buffer.write, sys.stderr.buffer.write))
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import psycopg
from psycopg import pq
from psycopg.pq.abc import PGconn, PGresult

from racesim.spec.parse import Permutation, PermutationStep, Spec, Step
from racesim.spec.table import write

if TYPE_CHECKING:
    from racesim.spec.history import Recorder

__all__ = [
    "POLL_STEPS",
    "InvalidPermutation",
    "Runner",
    "Sink",
    "SpecAborted",
    "run_spec",
    "step_timeout_from_env",
]

POLL_STEPS = (0.001, 0.01)
"""Seconds between looks at a running step: racesim's schedule (isolationtester: 10 ms)."""
CONNECT_TIMEOUT = 60.0
DEFAULT_STEP_TIMEOUT = 300.0
"""isolationtester's default bound on one step up to PostgreSQL 15 (PGISOLATIONTIMEOUT
overrides it)."""
DEFAULT_TEST_TIMEOUT = 180
"""``PG_TEST_TIMEOUT_DEFAULT`` when unset: from PostgreSQL 16 on, isolationtester's step
bound is twice this (360 s)."""

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
_NONBLOCK = 1
_RETRY = 2
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


class InvalidPermutation(Exception):
    """(Exploring) a step was due on a session still blocked in its previous step: no
    client can send that, so the interleaving is not a real one. The permutation
    was unwound: steps canceled, sessions rolled back, teardown run."""


@dataclass
class Sink:
    out: Callable[[bytes], object]
    err: Callable[[bytes], object]
    record: Recorder | None = None
    """Where the run is recorded as racesim's events (:mod:`racesim.spec.history`)."""


def step_timeout_from_env(version: int, env: Mapping[str, str] | None = None) -> float:
    """The step bound the isolationtester of PostgreSQL ``version`` (major) would use.

    Up to 15: ``PGISOLATIONTIMEOUT`` seconds, else 300. From 16 on: twice
    ``PG_TEST_TIMEOUT_DEFAULT`` seconds, else twice 180 (the other variable is not read).
    """
    env = env if env is not None else os.environ
    if version >= 16:
        value = env.get("PG_TEST_TIMEOUT_DEFAULT")
        return 2.0 * (DEFAULT_TEST_TIMEOUT if value is None else _atoi(value))
    value = env.get("PGISOLATIONTIMEOUT")
    return DEFAULT_STEP_TIMEOUT if value is None else float(_atoi(value))


def _atoi(text: str) -> int:
    """C's ``atoi``, as isolationtester reads its variables: leading digits, junk is 0."""
    found = re.match(r"[ \t\n\v\f\r]*([+-]?[0-9]+)", text)
    if found is None:
        return 0
    number = int(found.group(1))
    return number if -(2**31) <= number < 2**31 else 0


def _b(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


_COPY = (pq.ExecStatus.COPY_IN, pq.ExecStatus.COPY_OUT, pq.ExecStatus.COPY_BOTH)


@dataclass
class Bound:
    """When a wait began, and whether its query was canceled for running past the bound."""

    started: float
    canceled: bool = False


@dataclass
class _Conn:
    pg: PGconn
    name: str
    pid: int = 0
    active: PermutationStep | None = None
    active_step: Step | None = None
    notices: int = 0
    poll: select.poll = field(default_factory=select.poll)


class Runner:
    def __init__(
        self,
        spec: Spec,
        sink: Sink,
        step_timeout: float,
        *,
        check: Callable[[PGconn, int], None] | None = None,
        refuse_blocked: bool = False,
    ) -> None:
        """``check(control, k)`` runs after permutation step ``k`` (and with ``k`` the
        number of steps once every step completed); ``refuse_blocked`` raises
        :class:`InvalidPermutation` where isolationtester would wait for a blocked
        session."""
        self.check = check
        self.refuse_blocked = refuse_blocked
        self.typical = 0.0
        """Running mean of how long a step takes when it does not wait."""
        self.spec = spec
        self.sink = sink
        self.max_wait = step_timeout
        self.conns: list[_Conn] = []
        self.any_new_notice = False
        self.start = time.monotonic()
        self.targets: dict[tuple[int, int], int] = {}
        self.pids = b""

    # -- output ---------------------------------------------------------------
    def out(self, data: bytes) -> None:
        self.sink.out(data)

    def err(self, data: bytes) -> None:
        self.sink.err(data)
        if self.sink.record is not None:
            self.sink.record.problem(data.decode("utf-8", "replace").rstrip("\n"))

    def waits(self, step: Step, why: str, blockers: tuple[str, ...] = ()) -> None:
        """Record that ``step`` is shown waiting (on a ``lock``, a ``marker``, ``(*)``)."""
        if self.sink.record is not None:
            session = self.spec.sessions[step.session].name
            t = time.monotonic() - self.start
            self.sink.record.wait(session, step.name, step.sql, why, blockers, t)

    def abort(self, message: bytes) -> SpecAborted:
        self.err(message)
        return SpecAborted(message.decode("utf-8", "replace").strip())

    # -- connections ----------------------------------------------------------
    def connect(self, conninfo: str) -> None:
        """Open the control connection and one per session, all at once (isolationtester
        opens them one after the other; the outcome is the same)."""
        names = ["control connection"] + [s.name for s in self.spec.sessions]
        pgs = _connect_all(conninfo, len(names), CONNECT_TIMEOUT)
        for name, pg in zip(names, pgs, strict=True):
            conn = _Conn(pg, name)
            self.conns.append(conn)
        for i, conn in enumerate(self.conns):
            pg = conn.pg
            if pg.status != pq.ConnStatus.OK:
                raise self.abort(b"Connection %d failed: %s" % (i, pg.error_message))
            pg.notice_handler = self._blackhole if i == 0 else self._notice_for(conn)
            pg.send_query_params(_APPNAME_SQL, [_b(conn.name)])
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

    def _notice_for(self, conn: _Conn) -> Callable[[PGresult], None]:
        prefix = _b(conn.name) + b": "

        def notice(res: PGresult) -> None:
            message = res.error_message
            self.out(prefix + message)
            conn.notices += 1
            self.any_new_notice = True
            if self.sink.record is not None and conn.active_step is not None:
                self.sink.record.notice(conn.name, message.decode("utf-8", "replace").strip())

        return notice

    # -- one permutation ------------------------------------------------------
    def run(self) -> None:
        for perm in self.spec.run_order():
            self.permutation(perm)

    def exec_print(self, conn: _Conn, sql: str, failure: bytes, fatal: bool) -> None:
        res = self.execute(conn, _b(sql), failure.removesuffix(b" failed: "))
        self.print_last(conn, res, failure, fatal)

    def print_last(self, conn: _Conn, res: PGresult | None, failure: bytes, fatal: bool) -> None:
        """Print PQexec's answer as isolationtester does: its table, or its failure."""
        if res is not None and res.status == pq.ExecStatus.TUPLES_OK:
            _table(res, self.out)
        elif res is None or res.status != pq.ExecStatus.COMMAND_OK:
            message = failure + conn.pg.error_message
            if fatal:
                raise self.abort(message)
            self.err(message)

    # -- bounded waits ----------------------------------------------------------
    def execute(
        self, conn: _Conn, sql: bytes, what: bytes, params: list[bytes | None] | None = None
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

    def last_result(self, conn: _Conn, what: bytes) -> PGresult | None:
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

    def next_result(self, conn: _Conn, what: bytes, bound: Bound) -> PGresult | None:
        """PQgetResult, waited for within the bound (see :meth:`ready`)."""
        self.ready(conn, what, bound)
        return conn.pg.get_result()

    def ready(self, conn: _Conn, what: bytes, bound: Bound) -> None:
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

    def permutation(self, perm: Permutation) -> None:
        names = " ".join(p.name for p in perm.steps)
        self.out(b"\nstarting permutation: %s\n" % _b(names))
        if self.sink.record is not None:
            self.sink.record.permutation(names)
        control = self.conns[0]
        for sql in self.spec.setups:
            self.exec_print(control, sql, b"setup failed: ", fatal=True)
        self.per_session("setup", fatal=True)

        waiting: list[PermutationStep] = []
        for index, pstep in enumerate(perm.steps):
            step = self.spec.step(pstep.name)
            conn = self.conns[1 + step.session]
            if conn.active is not None:
                if self.refuse_blocked and self.blocked(conn):
                    self.unwind()
                    raise InvalidPermutation(f"{pstep.name} is due while its session waits")
                waiting = self.wait_for_session(conn, waiting)
            try:
                conn.pg.send_query(_b(step.sql))
            except psycopg.OperationalError:
                self.out(
                    b"failed to send query for step %s: %s" % (_b(step.name), conn.pg.error_message)
                )
                raise SpecAborted(f"failed to send query for step {step.name}") from None
            conn.active, conn.active_step = pstep, step
            for k, marker in enumerate(pstep.markers):
                if marker.kind == "notices" and marker.step is not None:
                    other = self.conns[1 + self.spec.step(marker.step).session]
                    self.targets[(id(pstep), k)] = marker.notices + other.notices
            mustwait = self.try_complete_step(pstep, _NONBLOCK)
            waiting = self.try_complete_steps(waiting, _NONBLOCK | _RETRY)
            if mustwait:
                waiting.append(pstep)
            if self.check is not None:
                self.check(control.pg, index)

        waiting = self.try_complete_steps(waiting, _RETRY)
        if waiting:
            raise self.abort(b"failed to complete permutation due to mutually-blocking steps\n")
        if self.check is not None:
            self.check(control.pg, len(perm.steps))
        if self.refuse_blocked:
            for i, session in enumerate(self.spec.sessions):
                status = self.conns[i + 1].pg.transaction_status
                if session.teardown is None and status != pq.TransactionStatus.IDLE:
                    # isolationtester would run the teardown beside an open
                    # transaction, and a DROP there waits for ever.
                    self.unwind()
                    raise InvalidPermutation(f"session {session.name} left its transaction open")
        self.teardown()

    def unwind(self) -> None:
        """Cancel what runs, roll every session back and run the teardown, quietly."""
        out, err, record = self.sink.out, self.sink.err, self.sink.record
        self.sink.out = self.sink.err = lambda data: None
        self.sink.record = None
        try:
            for conn in self.conns[1:]:
                what = b"rollback of session " + _b(conn.name)
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
                conn.pg.send_query(_b(sql))
        for conn, sql in todo:
            failure = b"%s of session %s failed: " % (what.encode(), _b(conn.name))
            if side_by_side:
                self.read_print(conn, failure, fatal)
            else:
                self.exec_print(conn, sql, failure, fatal)

    def read_print(self, conn: _Conn, failure: bytes, fatal: bool) -> None:
        """The rest of ``exec_print`` for SQL already sent: PQexec's last result counts."""
        last = self.last_result(conn, failure.removesuffix(b" failed: "))
        self.print_last(conn, last, failure, fatal)

    def teardown(self) -> None:
        control = self.conns[0]
        self.per_session("teardown", fatal=False)
        if self.spec.teardown is not None:
            self.exec_print(control, self.spec.teardown, b"teardown failed: ", fatal=False)

    def wait_for_session(
        self, conn: _Conn, waiting: list[PermutationStep]
    ) -> list[PermutationStep]:
        """The session's earlier step is still running: wait for it, as isolationtester does."""
        started = time.monotonic()
        while conn.active is not None:
            old = conn.active
            if not self.try_complete_step(old, _RETRY):
                waiting = [w for w in waiting if w is not old]
            waiting = self.try_complete_steps(waiting, _NONBLOCK | _RETRY)
            if conn.active is not None:
                elapsed = time.monotonic() - started
                if elapsed > 2 * self.max_wait:
                    assert conn.active_step is not None
                    active = b"".join(
                        b" " + _b(c.active.name) for c in self.conns[1:] if c.active is not None
                    )
                    self.err(
                        b"step %s timed out after %d seconds\n"
                        % (_b(conn.active.name), int(elapsed))
                    )
                    raise self.abort(b"active steps are:%s\n" % active)
        return waiting

    def try_complete_steps(
        self, waiting: list[PermutationStep], flags: int
    ) -> list[PermutationStep]:
        while True:
            self.any_new_notice = False
            before = len(waiting)
            have_marker = False
            still: list[PermutationStep] = []
            for pstep in waiting:
                if self.try_complete_step(pstep, flags):
                    have_marker = have_marker or bool(pstep.markers)
                    still.append(pstep)
            waiting = still
            if not (have_marker and (len(waiting) < before or self.any_new_notice)):
                return waiting

    def try_complete_step(self, pstep: PermutationStep, flags: int) -> bool:
        """True if the step has not completed (it waits on a lock or on a marker)."""
        step = self.spec.step(pstep.name)
        conn = self.conns[1 + step.session]
        pg = conn.pg
        waiting_line = b"step %s: %s <waiting ...>\n" % (_b(step.name), _b(step.sql))
        if not flags & _RETRY and any(m.kind == "once" for m in pstep.markers):
            self.out(waiting_line)
            self.waits(step, "(*)")
            return True
        started = time.monotonic()
        canceled = False
        looks = 0
        # The first look comes after 1 ms, or later when steps that complete without
        # waiting take longer than that here (a loaded machine): each look is a query
        # that competes with the step for the server.
        first = min(max(POLL_STEPS[0], 3 * self.typical), POLL_STEPS[-1])
        while pg.is_busy():
            interval = first if looks == 0 else POLL_STEPS[min(looks, len(POLL_STEPS) - 1)]
            ready = conn.poll.poll(1000 * interval)
            if ready:
                self.consume(conn)
                continue
            looks += 1
            if flags & _NONBLOCK and self.blocked(conn):
                self.consume(conn)
                if not pg.is_busy():
                    break
                if not flags & _RETRY:
                    self.out(waiting_line)
                    self.waits(step, "lock", self.blockers(conn))
                return True
            elapsed = time.monotonic() - started
            if elapsed > self.max_wait and not canceled:
                cancel = pg.get_cancel()
                try:
                    cancel.cancel()
                except psycopg.OperationalError as exc:
                    self.err(b"PQcancel failed: %s\n" % str(exc).encode())
                else:
                    self.out(
                        b"isolationtester: canceling step %s after %d seconds\n"
                        % (_b(step.name), int(elapsed))
                    )
                    canceled = True
            if elapsed > 2 * self.max_wait:
                raise self.abort(
                    b"step %s timed out after %d seconds\n" % (_b(step.name), int(elapsed))
                )

        if flags == _NONBLOCK:
            self.typical = 0.8 * self.typical + 0.2 * (time.monotonic() - started)
        if self.has_marker(pstep):
            if not flags & _RETRY:
                self.out(waiting_line)
                self.waits(step, "marker")
            return True

        captured: list[bytes] = []
        emit = self.out if self.sink.record is None else _tee(self.out, captured)
        sqlstate = b""
        if flags & _RETRY:
            emit(b"step %s: <... completed>\n" % _b(step.name))
        else:
            emit(b"step %s: %s\n" % (_b(step.name), _b(step.sql)))
        # isolationtester waits for each later result of the step without a bound
        bound, what = Bound(time.monotonic()), b"step " + _b(step.name)
        while (res := self.next_result(conn, what, bound)) is not None:
            status = res.status
            if status == pq.ExecStatus.TUPLES_OK:
                _table(res, emit)
            elif status == pq.ExecStatus.FATAL_ERROR:
                sev = res.error_field(pq.DiagnosticField.SEVERITY)
                msg = res.error_field(pq.DiagnosticField.MESSAGE_PRIMARY)
                if self.sink.record is not None:
                    sqlstate = res.error_field(pq.DiagnosticField.SQLSTATE) or b""
                if sev and msg:
                    emit(b"%s:  %s\n" % (sev, msg))
                else:
                    emit(res.error_message + b"\n")
            elif status in (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.EMPTY_QUERY):
                pass
            else:
                emit(b"unexpected result status: PGRES_%s\n" % pq.ExecStatus(status).name.encode())
                if status in (pq.ExecStatus.COPY_IN, pq.ExecStatus.COPY_BOTH):
                    pg.put_copy_end(b"racesim does not feed COPY FROM STDIN")
                elif status == pq.ExecStatus.COPY_OUT:
                    while pg.get_copy_data(0)[0] >= 0:
                        pass
        with contextlib.suppress(psycopg.OperationalError):
            pg.consume_input()
        while (notify := pg.notifies()) is not None:
            sender = next(
                (_b(c.name) for c in self.conns[1:] if c.pid == notify.be_pid),
                b"PID %d" % notify.be_pid,
            )
            emit(
                b'%s: NOTIFY "%s" with payload "%s" from %s\n'
                % (_b(conn.name), notify.relname, notify.extra, sender)
            )
            with contextlib.suppress(psycopg.OperationalError):
                pg.consume_input()
        conn.active = None
        conn.active_step = None
        if self.sink.record is not None:
            printed = b"".join(captured).decode("utf-8", "replace")
            t = time.monotonic() - self.start
            session = self.spec.sessions[step.session].name
            self.sink.record.completed(
                session, step.name, step.sql, bool(flags & _RETRY), printed, sqlstate.decode(), t
            )
        return False

    def consume(self, conn: _Conn) -> None:
        try:
            conn.pg.consume_input()
        except psycopg.OperationalError:
            raise self.abort(b"PQconsumeInput failed: %s\n" % conn.pg.error_message) from None

    def blocked(self, conn: _Conn) -> bool:
        control = self.conns[0].pg
        res = control.exec_params(_BLOCKED_SQL, [str(conn.pid).encode(), self.pids])
        if res.status != pq.ExecStatus.TUPLES_OK or res.ntuples != 1:
            raise self.abort(b"lock wait query failed: %s" % control.error_message)
        return (res.get_value(0, 0) or b"f")[:1] == b"t"

    def blockers(self, conn: _Conn) -> tuple[str, ...]:
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

    def has_marker(self, pstep: PermutationStep) -> bool:
        for k, marker in enumerate(pstep.markers):
            if marker.kind == "once" or marker.step is None:
                continue
            other = self.spec.step(marker.step)
            conn = self.conns[1 + other.session]
            if marker.kind == "other":
                if conn.active_step is other:
                    return True
            elif conn.notices < self.targets.get((id(pstep), k), 0):
                return True
        return False


def _connect_all(conninfo: str, count: int, timeout: float) -> list[PGconn]:
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


def _tee(out: Callable[[bytes], None], captured: list[bytes]) -> Callable[[bytes], None]:
    def emit(data: bytes) -> None:
        out(data)
        captured.append(data)

    return emit


def _table(res: PGresult, out: Callable[[bytes], object]) -> None:
    """Print ``res`` as PQprint does, a piece at a time, straight from the result."""
    names = [res.fname(j) or b"" for j in range(res.nfields)]
    columns = range(res.nfields)

    def rows() -> Iterator[list[bytes | None]]:
        for i in range(res.ntuples):
            yield [res.get_value(i, j) for j in columns]

    write(names, rows, out)


def run_spec(spec: Spec, conninfo: str, sink: Sink, *, step_timeout: float | None = None) -> None:
    """Run every permutation of ``spec`` on the database ``conninfo`` names.

    Without ``step_timeout``, each step is bounded as the server's version of
    isolationtester bounds it (:func:`step_timeout_from_env`). Raises
    :class:`SpecAborted` where isolationtester exits with status 1.
    """
    runner = Runner(spec, sink, DEFAULT_STEP_TIMEOUT if step_timeout is None else step_timeout)
    for name in spec.unused:
        runner.err(b"unused step name: %s\n" % _b(name))
    runner.out(b"Parsed test spec with %d sessions\n" % len(spec.sessions))
    try:
        runner.connect(conninfo)
        if step_timeout is None:  # server_version_num, e.g. 150018 or 180001
            runner.max_wait = step_timeout_from_env(runner.conns[0].pg.server_version // 10000)
        runner.run()
    finally:
        runner.close()
