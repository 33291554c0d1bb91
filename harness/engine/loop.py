"""The engine: runs a plan's actors in exactly the order its schedule says.

Each actor is one run of a caller's program on its own session. A step sends
the program's next call; when PostgreSQL makes it wait on a lock (seen from the
monitor session with ``pg_isolation_test_session_is_blocked``, as PostgreSQL's
isolation tester does) the step is recorded as waiting and the schedule goes on;
its completion is recorded when it comes. Every event goes into the history
with the system's watched state after it, and through the checks.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import psycopg

from racesim.checks.invariants import Checker
from racesim.engine import clock as vclock
from racesim.engine.actors import Run, apply_session_options, describe, direct
from racesim.engine.pool import SessionPool
from racesim.engine.sessions import DEADLOCK_SETTLE, Worker, configure, open_session, sent
from racesim.errors import HarnessError, InputError, Problem
from racesim.model.history import NOT_COMPARED, Event, EventKind, History
from racesim.model.outcome import Outcome as Outcome
from racesim.model.plan import Actor, ClockMove, Outage, Plan, Step, format_delta, label_offset
from racesim.system import DEFAULT_SYSTEM, Call, InjectedFault, RunContext, Session, System, resolve


@dataclass(frozen=True)
class Options:
    stop_at_first: bool = False
    compare_model: bool = True
    """Run the system's model beside a variant that follows it, and check that they agree."""
    wait_bound: float = 2.0
    """Seconds a waiting step may stay blocked when nothing else can run any more."""
    step_bound: float = 10.0
    """Seconds any one step may take before the harness cancels it."""
    poll: float = 0.001
    """How often a running step is looked at (seconds); bounds blocked-step detection."""


@dataclass
class Draft:
    """An event before its place in the history (and the watched state) is known."""

    kind: EventKind
    actor: str
    call: str
    label: str
    line: int | None
    vtime: datetime | None
    wall: float
    args: tuple[Any, ...] = ()
    result: Any = None
    error: str | None = None
    sqlstate: str | None = None
    finished: str | None = None
    model: Any = field(default=NOT_COMPARED)
    model_error: str | None = None
    blocked_after: float = 0.0
    blocked_by: tuple[str, ...] = ()
    sent: tuple[str, ...] = ()
    session_ended: bool = False

    def event(self, seq: int, state: Any) -> Event:
        return Event(
            seq=seq,
            kind=self.kind,
            actor=self.actor,
            call=self.call,
            label=self.label,
            line=self.line,
            args=self.args,
            result=self.result,
            error=self.error,
            sqlstate=self.sqlstate,
            state=state,
            vtime=self.vtime,
            wall=self.wall,
            finished=self.finished,
            model=self.model,
            model_error=self.model_error,
            blocked_after=self.blocked_after,
            blocked_by=self.blocked_by,
            sql="\n".join(self.sent),
            sent=self.sent,
            session_ended=self.session_ended,
        )


class Engine:
    """Executes one plan against one variant of a system; use ``execute`` for the common case."""

    def __init__(
        self,
        plan: Plan,
        store: str,
        conninfo: str | None,
        options: Options,
        pool: SessionPool | None = None,
        restart_server: Callable[[], None] | None = None,
        *,
        system: System,
    ) -> None:
        self.system = system
        self.variant = self.system.variant(store)
        database = self.variant.database
        self.model = (
            self.system.variant(self.system.model)
            if self.system.model and database and self.variant.follows_model
            else None
        )
        self.plan = plan
        self.pool = pool if database else None
        self.restart_server = restart_server if database else None
        self.store = store
        self.options = options
        self.conninfo = conninfo if database else None
        self.history = History(scenario="", store=store, show=self.system.show)
        self.checker = Checker(
            self.system.invariants(plan.actors),
            compare_model=options.compare_model and self.model is not None,
        )
        self.mailbox: dict[str, Any] = {}
        """What each run has sent, by the sending run's name."""
        self.monitor: psycopg.Connection[Any] | None = None
        self.runs: dict[str, Run] = {}
        self.started = time.perf_counter()
        self.offset = timedelta(0)
        self.seq = -1
        self.state: Any = None
        """The watched state as last read."""

    # -- setup and teardown -------------------------------------------------

    def open(self) -> None:
        try:
            self._open()
        except psycopg.OperationalError as exc:
            raise self._lost(exc) from None

    def _open(self) -> None:
        if self.pool is not None:
            self.pool.reset()
            self.monitor = self.pool.monitor
        elif self.conninfo is not None:
            self.monitor = open_session(self.conninfo, application_name="racesim-monitor")
            if self.variant.prepare is not None:
                self.variant.prepare(self.monitor)
        self.clock = vclock.VirtualClock(vclock.EPOCH + self.plan.start_offset(), self.monitor)
        make_world = self.variant.world
        self.world = make_world(self.clock.now) if make_world is not None else None
        shadow_world = None
        if self.checker.compare_model and self.model is not None and self.model.world:
            shadow_world = self.model.world(self.clock.now)
        for index, actor in enumerate(self.plan.actors):
            self.runs[actor.name] = self._start(index, actor, shadow_world)
        self.pids = [r.pid for r in self.runs.values() if r.pid]

    def _start(self, index: int, actor: Actor, shadow_world: Any) -> Run:
        seed = self.plan.seed * 1_000_003 + index
        conn = worker = None
        if self.pool is not None or self.conninfo is not None:
            conn, worker = self._open_session(index, actor)
        store = self.variant.open(Session(conn, self.world, seed, actor.name, actor.program))
        self.history.opened[actor.name] = sent(conn, forget=True)
        ctx = RunContext(actor.name, self.store, dict(actor.options), actor.faults)
        run = Run(
            index=index,
            actor=actor,
            store=store,
            program=self.system.programs[actor.program].make(ctx),
            conn=conn,
            seed=seed,
        )
        if conn is not None:
            run.worker = worker
            run.pid = conn.info.backend_pid
        if self.model is not None and self.checker.compare_model:
            run.shadow = self.model.open(Session(None, shadow_world, seed, actor.name))
        run.advance(None, None)
        return run

    def _open_session(
        self, index: int, actor: Actor, worker: Worker | None = None
    ) -> tuple[psycopg.Connection[Any], Worker]:
        """The actor's session with its options set: pooled, or opened here."""
        if self.pool is not None:
            conn, worker = self.pool.session(index)
            if apply_session_options(conn, actor):
                self.pool.mark_dirty(index)
            return conn, worker
        assert self.conninfo is not None
        conn = open_session(self.conninfo, application_name=f"racesim-{actor.name}")
        configure(conn)
        apply_session_options(conn, actor)
        return conn, worker or Worker(actor.name)

    def close(self) -> None:
        for run in self.runs.values():
            run.stop()
        if self.pool is not None:
            for run in self.runs.values():
                if run.waits_in_server() and run.conn is not None and not run.conn.closed:
                    run.conn.cancel_safe()
                    if run.worker is not None:
                        run.worker.reply(self.options.step_bound)
            return
        for run in self.runs.values():
            if run.conn is not None and not run.conn.closed:
                if run.waits_in_server():
                    run.conn.cancel_safe()
                if run.worker is not None:
                    run.worker.stop()
                run.conn.close()
            elif run.worker is not None:
                run.worker.stop()
        if self.monitor is not None:
            self.monitor.close()

    # -- the schedule -------------------------------------------------------

    def run(self) -> Outcome:
        try:
            for entry in self.plan.entries:
                if self.options.stop_at_first and self.checker.violations:
                    break
                if self.history.stuck:
                    break
                self.take(entry)
            if not self.history.stuck and not (
                self.options.stop_at_first and self.checker.violations
            ):
                for run in self.runs.values():
                    if run.pending is not None and not self._await(run):
                        break
        except psycopg.OperationalError as exc:
            raise self._lost(exc) from None
        return Outcome(self.history, self.checker)

    def _lost(self, exc: BaseException) -> HarnessError:
        # Actor errors come back as replies; an OperationalError here is the monitor's
        # (or a new session's: the server is gone or refuses connections).
        return HarnessError(
            f"the monitor session was lost after {len(self.history.events)} events"
            f" ({describe(exc)}); the run stops here and nothing after that was checked"
        )

    def time_at(self, label: str) -> datetime:
        """The virtual time an entry labelled ``label`` would happen at, from here."""
        return vclock.EPOCH + self.offset + label_offset(label)

    def take(self, entry: Step | ClockMove | Outage) -> None:
        """Carry out one schedule entry (its label, if any, sets the virtual time first)."""
        try:
            self._take(entry)
        except psycopg.OperationalError as exc:
            raise self._lost(exc) from None

    def _take(self, entry: Step | ClockMove | Outage) -> None:
        if entry.label:
            self.clock.set(vclock.EPOCH + self.offset + label_offset(entry.label))
        if isinstance(entry, ClockMove):
            self._clock(entry)
        elif isinstance(entry, Outage):
            self._outage(entry)
        else:
            self._step(entry)

    # -- outages ------------------------------------------------------------

    def _outage(self, outage: Outage) -> None:
        if outage.kind == "restart":
            self._restart(outage)
        elif outage.target == "monitor":
            if self.monitor is not None:
                # It goes, as asked; the next look through it fails the run.
                with contextlib.suppress(psycopg.OperationalError):
                    self.monitor.execute("SELECT pg_terminate_backend(pg_backend_pid())")
            self._record(
                [
                    self._event(
                        "outage",
                        "monitor",
                        "terminate",
                        outage.label,
                        outage.line,
                        result="monitor session terminated",
                    )
                ]
            )
        else:
            run = self.runs[outage.target]
            if run.conn is not None and not run.closed:
                self._terminate(run.pid)
            events = self._lose(run, outage, "crashed: backend terminated", "backend terminated")
            self._record(events, settle=True)

    def _terminate(self, pid: int) -> None:
        """pg_terminate_backend, then wait until the backend is really gone."""
        assert self.monitor is not None
        self.monitor.execute("SELECT pg_terminate_backend(%s)", (pid,))
        self._await_exit(pid)

    def _await_exit(self, pid: int) -> None:
        """Wait until the server has let go of backend ``pid``.

        Closing a connection returns before its backend has exited, and only the
        exit releases the session's locks (advisory locks included): a crash is
        complete once the backend is gone from ``pg_stat_activity``.
        """
        if self.monitor is None or not pid:
            return
        deadline = time.perf_counter() + self.options.step_bound
        while self.monitor.execute(
            "SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)
        ).fetchone():
            if time.perf_counter() > deadline:
                raise HarnessError(
                    f"backend {pid} was still running {self.options.step_bound:g}s after its"
                    " session ended; its locks may still be held, so nothing after it is checked"
                )
            time.sleep(self.options.poll)

    def _lose(self, run: Run, outage: Outage, why: str, result: str) -> list[Draft]:
        """The run's session is gone: its waiting step fails, and the run crashes."""
        events = self._interrupted(run) if run.conn is not None else []
        run.crash(why)
        call = "restart" if outage.kind == "restart" else "terminate"
        events.append(
            self._event(
                "outage",
                run.actor.name,
                call,
                outage.label,
                outage.line,
                result=result,
                finished=run.finished,
            )
        )
        return events

    def _interrupted(self, run: Run) -> list[Draft]:
        """The failed completion of a step that was waiting when its session died."""
        if run.pending is None or run.worker is None:
            return []
        ok, value = run.reply(self.options.step_bound) or (
            False,
            HarnessError("no reply after the session died"),
        )
        call, run.pending = run.pending, None
        return [
            self._event(
                "done",
                run.actor.name,
                call.name,
                run.pending_label,
                run.pending_line,
                args=call.args,
                result=value if ok else None,
                error=None if ok else describe(value),
                sqlstate=None if ok else getattr(value, "sqlstate", None),
                sent=sent(run.conn),
            )
        ]

    def _restart(self, outage: Outage) -> None:
        """Restart the server. Rule: runs that have started crash (their work in flight
        dies with the session, and is never retried, so no step counts twice); runs that
        have not started reconnect and go on; finished runs are untouched."""
        if self.monitor is not None and self.restart_server is None:
            raise InputError(
                Problem(
                    "'restart server' needs racesim's own local cluster",
                    line=outage.line,
                    hint="run without --dsn / --pg dsn",
                )
            )
        if self.restart_server is not None:
            self.restart_server()
        # The monitor (and, pooled, every session) first: reconnected runs then get
        # sessions of their own that the pool's reconnect does not close again.
        if self.monitor is not None:
            self.monitor.close()
            self.monitor = (
                self.pool.reconnect()
                if self.pool is not None
                else open_session(self.conninfo or "", application_name="racesim-monitor")
            )
            self.clock.rebind(self.monitor)
        events: list[Draft] = []
        for run in self.runs.values():
            if run.finished is not None:
                continue
            if run.started:
                events += self._lose(run, outage, "crashed: server restarted", "session lost")
            elif run.conn is not None:
                self._reconnect(run)
                events.append(
                    self._event(
                        "outage",
                        run.actor.name,
                        "restart",
                        outage.label,
                        outage.line,
                        result="reconnected",
                    )
                )
        self.pids = [r.pid for r in self.runs.values() if r.pid and not r.closed]
        if not events:
            events.append(
                self._event(
                    "outage",
                    "server",
                    "restart",
                    outage.label,
                    outage.line,
                    result="server restarted",
                )
            )
        self._record(events)

    def _reconnect(self, run: Run) -> None:
        assert run.conn is not None
        run.conn.close()
        conn, run.worker = self._open_session(run.index, run.actor, run.worker)
        run.conn, run.pid = conn, conn.info.backend_pid
        run.store = self.variant.open(
            Session(conn, self.world, run.seed, run.actor.name, run.actor.program)
        )

    # -- stepping from outside (explorers drive the engine one entry at a time) --

    def next_call(self, actor: str) -> str | None:
        """The call ``actor`` makes (or waits in) next; None once its program has finished."""
        run = self.runs[actor]
        if run.pending is not None:
            return run.pending.name
        return run.next_call.name if run.next_call is not None else None

    def waiting(self, actor: str) -> bool:
        """True while ``actor``'s step waits on a lock (sent, seen blocked, not done)."""
        return self.runs[actor].pending is not None

    def outcome(self) -> Outcome:
        """The history and checker so far (what ``run`` returns at its end)."""
        return Outcome(self.history, self.checker)

    def _clock(self, move: ClockMove) -> None:
        self.offset += move.delta
        self.clock.advance(move.delta)
        self._record(
            [self._event("clock", "clock", format_delta(move.delta), move.label, move.line)]
        )

    def _step(self, step: Step) -> None:
        run = self.runs[step.actor]
        if run.pending is not None:
            if step.call and step.call != run.pending.name:
                raise _mismatch(step, run.pending.name, f"is still waiting in {run.pending.name}")
            self._await(run, step)
            return
        call = run.next_call
        if call is None:
            raise _mismatch(step, None, f"has finished ({run.finished})")
        if step.call and step.call != call.name:
            raise _mismatch(step, call.name, f"makes {call.name} next")
        run.started = True
        sent(run.conn, forget=True)
        self._let_waits_settle()
        reply = self._send(run, call)
        if reply is None:
            run.pending, run.pending_label, run.pending_line = call, step.label, step.line
            closed_cycle = run.closed_cycle
            if closed_cycle:
                self._resolve_deadlock(run)
            wait = self._event(
                "wait",
                step.actor,
                call.name,
                step.label,
                step.line,
                args=call.args,
                blocked_after=run.blocked_after,
                blocked_by=run.blocked_by,
                sent=sent(run.conn),
            )
            if closed_cycle:
                # What the deadlock ended is recorded as the schedule reaches it, and
                # the state is read then: when the server's check ran is not recorded.
                self._record([wait], watch=False)
            else:
                self._record([wait], settle=True)
            return
        first = self._complete(run, call, reply, "step", step.label, step.line)
        self._record([first], settle=True)

    # -- one call -----------------------------------------------------------

    def _send(self, run: Run, call: Call) -> tuple[bool, Any] | None:
        """Start the call; its reply, or None when PostgreSQL has it waiting on a lock."""
        if call.fault:
            return False, InjectedFault(call.fault)
        if call.kind == "work":
            return True, None
        if call.kind == "send":
            self.mailbox[run.actor.name] = call.args[0]
            return True, None
        if call.kind == "receive":
            return True, self.mailbox.get(str(call.args[0])) if call.args else None
        if call.kind == "crash":
            run.end_session()
            self._await_exit(run.pid)
            return True, None
        if run.worker is None:  # an in-memory variant: no database, no waiting
            if call.kind == "sql":
                return True, None
            return direct(run.store, call)
        if self.pool is not None and (call.kind == "sql" or call.name in self.system.sticky):
            self.pool.mark_dirty(run.index)  # before the fast path: it takes locks too
        if call.kind == "db" and self.system.direct_calls and self._nobody_holds_locks(run):
            # A store call is one autocommit statement (or a transaction of its own):
            # it can wait only on a lock that another session's open transaction
            # holds. With none open, run it here, without the worker handoff.
            return direct(run.store, call)
        job = run.job(call)
        run.sent_at = time.perf_counter()
        run.worker.submit(job)
        reply = self._wait(run, first=True)
        run.blocked_after = time.perf_counter() - run.sent_at
        return reply

    def _let_waits_settle(self) -> None:
        """Before a step is sent, every waiting step has waited ``DEADLOCK_SETTLE``:
        its own deadlock check has run, so a cycle the new step closes is found by
        the new step's check, never by an older one racing it."""
        waiting = [r.sent_at for r in self.runs.values() if r.waits_in_server()]
        if waiting:
            delay = max(waiting) + DEADLOCK_SETTLE - time.perf_counter()
            if delay > 0:
                time.sleep(delay)

    def _nobody_holds_locks(self, run: Run) -> bool:
        # The system promises (``direct_calls``) that its calls never leave a
        # transaction open; only a ``sql`` step can, and a waiting step may hold locks.
        return not any(
            other.in_txn or other.pending is not None
            for other in self.runs.values()
            if other is not run
        )

    def _wait(self, run: Run, first: bool = False) -> tuple[bool, Any] | None:
        """Wait for the running call until it replies or is seen blocked.

        For the call just sent (``first``), a wait that closes a cycle of waits
        sets ``run.closed_cycle``; so does a reply that is the server's deadlock
        error, seen before any look saw the wait (its check ran first): that call
        waited, and its reply is held for the schedule to reach."""
        assert run.worker is not None
        deadline = time.perf_counter() + self.options.step_bound
        while True:
            reply = run.reply(self.options.poll)
            if reply is not None:
                if first and _deadlock_victim(reply):
                    run.held, run.closed_cycle = reply, True
                    return None
                return reply
            if self._blocked(run, first):
                return None
            if time.perf_counter() > deadline:
                assert run.conn is not None
                run.conn.cancel_safe()
                return run.worker.reply(self.options.step_bound) or (
                    False,
                    HarnessError(f"{run.actor.name}: step did not end after cancel"),
                )

    def _blocked(self, run: Run, sent: bool = False) -> bool:
        """True when the run's step is seen waiting; for the step just ``sent``, whether
        its wait closed a cycle of waits too (``run.closed_cycle``)."""
        if not self._is_blocked(run):
            return False
        pids = self._blocking_pids(run.step_pid())
        run.blocked_by = self._names(pids)
        if not sent:
            return True
        if self._closes_cycle(run, pids):
            run.closed_cycle = True
            return True
        if pids and not pids & self._waiting_pids(run).keys():
            return True  # waits only on sessions that are not waiting: no cycle
        # It waited on a waiting session yet closed no cycle, or no blocker was left:
        # the server's deadlock check may have ended its wait between the two looks.
        return self._is_blocked(run)

    def _is_blocked(self, run: Run) -> bool:
        assert self.monitor is not None
        pid = run.step_pid()
        others = [p for r in self.runs.values() for p in r.backend_pids() if p and p != pid]
        row = self.monitor.execute(
            "SELECT pg_isolation_test_session_is_blocked(%s, %s)", (pid, others)
        ).fetchone()
        return bool(row and row[0])

    def _blocking_pids(self, pid: int) -> set[int]:
        assert self.monitor is not None
        row = self.monitor.execute("SELECT pg_blocking_pids(%s)", (pid,)).fetchone()
        return set(row[0]) if row and row[0] else set()

    def _names(self, pids: set[int]) -> tuple[str, ...]:
        """The runs whose sessions are ``pids`` (``pid N`` for the others)."""
        ours = [r for r in self.runs.values() if pids & set(r.backend_pids()) and not r.closed]
        others = pids - {p for r in ours for p in r.backend_pids()}
        return tuple(r.actor.name for r in ours) + tuple(f"pid {p}" for p in sorted(others))

    def _waiting_pids(self, run: Run) -> dict[int, Run]:
        """The backends of the other runs' steps that wait in the server, by pid."""
        return {r.step_pid(): r for r in self.runs.values() if r is not run and r.waits_in_server()}

    def _closes_cycle(self, run: Run, blockers: set[int]) -> bool:
        """True when ``run``'s wait on ``blockers`` closes a cycle of waits: then the
        server's deadlock check ends one of them (``run``'s own, see DEADLOCK_SETTLE)."""
        assert self.monitor is not None
        waiting = self._waiting_pids(run)
        if not blockers & waiting.keys():
            return False
        rows = self.monitor.execute(
            "SELECT p, pg_blocking_pids(p) FROM unnest(%s::int[]) AS p", (list(waiting),)
        ).fetchall()
        edges = {pid: set(blocking or ()) for pid, blocking in rows}
        own = set(run.backend_pids())
        seen: set[int] = set()
        todo = [p for p in blockers if p in waiting]
        while todo:
            pid = todo.pop()
            if pid in seen:
                continue
            seen.add(pid)
            if edges.get(pid, set()) & own:
                return True
            todo += [p for p in edges.get(pid, set()) if p in waiting]
        return False

    def _resolve_deadlock(self, run: Run) -> None:
        """Wait until the server's deadlock check has ended the cycle ``run``'s step
        closed, holding each reply it brings (``Run.held``) for the schedule to reach.

        So the next step meets the deadlock over whenever the check ran, and what is
        recorded is the same whether or not a look saw the wait before the check."""
        assert run.worker is not None
        deadline = time.perf_counter() + self.options.step_bound
        while run.held is None:
            run.held = run.worker.reply(self.options.poll)
            if run.held is not None or time.perf_counter() > deadline:
                break
            checked = time.perf_counter() > run.sent_at + DEADLOCK_SETTLE
            if checked and self._is_blocked(run):
                pids = self._blocking_pids(run.step_pid())
                if not self._closes_cycle(run, pids):
                    break  # the check reordered the waits instead: it waits on
        run.closed_cycle = False
        gone: set[int] = set()
        if run.held is not None:  # it ended: what it held is let go
            gone = set(run.backend_pids())
            named = _cycle_blockers(run.held[1], gone)
            if named:
                run.blocked_by = self._names(named)
        for other in self.runs.values():
            while other is not run and other.waits_in_server():
                assert other.worker is not None
                other.held = other.worker.reply(self.options.poll)
                if other.held is not None or time.perf_counter() > deadline:
                    break
                if self._is_blocked(other) and not (self._blocking_pids(other.step_pid()) & gone):
                    break

    def _await(self, run: Run, step: Step | None = None) -> bool:
        """Wait for a waiting step to complete; False (and the run stuck) if it never can."""
        assert run.worker is not None and run.pending is not None
        deadline = time.perf_counter() + self.options.wait_bound
        while True:
            reply = run.reply(self.options.poll)
            if reply is not None:
                call = run.pending
                run.pending = None
                label = step.label if step and step.label else run.pending_label
                line = step.line if step else run.pending_line
                self._record([self._complete(run, call, reply, "done", label, line)], settle=True)
                return True
            if time.perf_counter() > deadline:
                self.history.stuck = (
                    f"{run.actor.name} waits in {run.pending.name} for a lock that no"
                    " remaining step can release: the schedule can never finish"
                )
                self._record(
                    [
                        self._event(
                            "stuck",
                            run.actor.name,
                            run.pending.name,
                            step.label if step else "",
                            step.line if step else None,
                        )
                    ]
                )
                return False

    def _settle(self) -> list[Draft]:
        """Record completions of waiting steps that the last step released."""
        done: list[Draft] = []
        progress = True
        while progress:
            progress = False
            for run in self.runs.values():
                if run.pending is None:
                    continue
                reply = self._wait(run)
                if reply is None:
                    continue
                call, run.pending = run.pending, None
                done.append(
                    self._complete(run, call, reply, "done", run.pending_label, run.pending_line)
                )
                progress = True
        return done

    def _complete(
        self,
        run: Run,
        call: Call,
        reply: tuple[bool, Any],
        kind: EventKind,
        label: str,
        line: int | None,
    ) -> Draft:
        ok, value = reply
        if not ok and isinstance(value, HarnessError):  # a store that cannot go on
            raise value
        lost = isinstance(value, psycopg.OperationalError) and bool(run.conn and run.conn.broken)
        if not ok and lost:  # the schedule's own outages never come here
            raise HarnessError(
                f"the session of {run.actor.name} was lost in {call.name}"
                f" ({describe(value)}), not by the schedule: the server stopped or the"
                " backend was ended from outside; the run stops here and nothing after"
                " that was checked"
            )
        run.note_transaction(call)
        model, model_error = run.model_result(call)
        run.advance(None if ok else value, value if ok else None)
        error = sqlstate = None
        if not ok:
            error = describe(value)
            sqlstate = getattr(value, "sqlstate", None)
        return self._event(
            kind,
            run.actor.name,
            call.name,
            label,
            line,
            args=call.args,
            result=value if ok else None,
            error=error,
            sqlstate=sqlstate,
            finished=run.finished,
            model=model,
            model_error=model_error,
            sent=sent(run.conn),
            session_ended=call.kind == "crash",
        )

    # -- the record ---------------------------------------------------------

    def _event(
        self, kind: EventKind, actor: str, call: str, label: str, line: int | None, **fields: Any
    ) -> Draft:
        """An event but for its place; ``_record`` makes the Event once the state is read."""
        return Draft(
            kind,
            actor,
            call,
            label,
            line,
            self.clock.now(),
            time.perf_counter() - self.started,
            **fields,
        )

    def _record(self, drafts: list[Draft], settle: bool = False, watch: bool = True) -> None:
        if settle:
            drafts += self._settle()
        last = len(drafts) - 1
        state = self._watch() if watch else None
        if watch:
            self.state = state
        for i, draft in enumerate(drafts):
            self.seq += 1
            event = draft.event(self.seq, state if i == last else None)
            self.history.add(event)
            self.checker.feed(event)

    def _watch(self) -> Any:
        """The system's watched state now (from the monitor, or the in-memory world)."""
        if self.monitor is None:
            return self.variant.watch(self.world)
        return self.variant.watch(self.monitor)


def execute(
    plan: Plan,
    store: str,
    conninfo: str | None = None,
    options: Options | None = None,
    scenario: str = "",
    pool: SessionPool | None = None,
    restart_server: Callable[[], None] | None = None,
    system: System | str | None = None,
) -> Outcome:
    """Run ``plan`` on variant ``store`` of ``system`` (the reference system by default).

    ``conninfo`` names a prepared database (None for an in-memory variant). With
    a ``pool`` (made for this variant), sessions are reused and the database
    reset instead of opened afresh: what repeated runs (exploration) want.
    ``restart_server`` is how a ``restart server`` entry restarts the server.
    """
    found = resolve(DEFAULT_SYSTEM if system is None else system)
    if found.variant(store).database and conninfo is None and pool is None:
        raise HarnessError(f"the {store} store needs a database")
    conninfo = conninfo or (pool.conninfo if pool else None)
    engine = Engine(plan, store, conninfo, options or Options(), pool, restart_server, system=found)
    engine.history.scenario = scenario
    try:
        engine.open()
        return engine.run()
    finally:
        engine.close()


def _deadlock_victim(reply: tuple[bool, Any]) -> bool:
    ok, value = reply
    return not ok and getattr(value, "sqlstate", None) == "40P01"


def _cycle_blockers(error: Any, own: set[int]) -> set[int]:
    """The backends a deadlock error says ``own``'s backend waited on (its detail
    lists the cycle: ``Process P waits for ...; blocked by process Q.``)."""
    diag = getattr(error, "diag", None)
    detail = getattr(diag, "message_detail", None) or ""
    found = re.findall(r"Process (\d+) waits for .*?; blocked by process (\d+)\.", detail)
    return {int(q) for p, q in found if int(p) in own}


def _mismatch(step: Step, actual: str | None, why: str) -> InputError:
    fix = f"write '{step.actor}: {actual}'" if actual else f"remove this step of {step.actor}"
    return InputError(
        Problem(
            ("" if step.line else "schedule: ")
            + f"step '{step.label + ' ' if step.label else ''}{step.actor}: {step.call}'"
            f" does not match the program: {step.actor} {why}",
            line=step.line,
            hint=fix,
        )
    )
