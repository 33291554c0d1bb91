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
import time
from collections.abc import Callable, Mapping

import psycopg
from psycopg import pq
from psycopg.pq.abc import PGconn

from racesim.spec.parse import Permutation, PermutationStep, Spec, Step
from racesim.spec.sessions import Bound, Conn, Sessions, Sink, SpecAborted, table
from racesim.spec.sessions import encoded as _b

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

DEFAULT_STEP_TIMEOUT = 300.0
"""isolationtester's default bound on one step up to PostgreSQL 15 (PGISOLATIONTIMEOUT
overrides it)."""

DEFAULT_TEST_TIMEOUT = 180
"""``PG_TEST_TIMEOUT_DEFAULT`` when unset: from PostgreSQL 16 on, isolationtester's step
bound is twice this (360 s)."""

_NONBLOCK = 1
_RETRY = 2


class InvalidPermutation(Exception):
    """(Exploring) a step was due on a session still blocked in its previous step: no
    client can send that, so the interleaving is not a real one. The permutation
    was unwound: steps canceled, sessions rolled back, teardown run."""


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


class Runner(Sessions):
    """isolationtester's permutations, stepped on a spec run's sessions."""

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
        super().__init__(spec, sink, step_timeout)
        self.check = check
        self.refuse_blocked = refuse_blocked
        self.typical = 0.0
        """Running mean of how long a step takes when it does not wait."""
        self.targets: dict[tuple[int, int], int] = {}

    def waits(self, step: Step, why: str, blockers: tuple[str, ...] = ()) -> None:
        """Record that ``step`` is shown waiting (on a ``lock``, a ``marker``, ``(*)``)."""
        if self.sink.record is not None:
            session = self.spec.sessions[step.session].name
            t = time.monotonic() - self.start
            self.sink.record.wait(session, step.name, step.sql, why, blockers, t)

    def run(self) -> None:
        for perm in self.spec.run_order():
            self.permutation(perm)

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

    def wait_for_session(self, conn: Conn, waiting: list[PermutationStep]) -> list[PermutationStep]:
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
                table(res, emit)
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


def _tee(out: Callable[[bytes], None], captured: list[bytes]) -> Callable[[bytes], None]:
    def emit(data: bytes) -> None:
        out(data)
        captured.append(data)

    return emit


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
