"""Carrying out one step of a run: sending its call, seeing it wait or reply, and
recording its completion (and what it released) in the order the schedule reaches.

A call runs on its session's worker thread; while no reply has come, the monitor
looks whether PostgreSQL has it waiting on a lock. A waiting step is recorded as
waiting and the schedule goes on; its completion is recorded when it comes.
"""

from __future__ import annotations

import time
from typing import Any

import psycopg

from racesim.engine.actors import Reply, Run, describe, direct
from racesim.engine.commit_steps import COMMIT, changes_data
from racesim.engine.options import Options
from racesim.engine.pool import SessionPool
from racesim.engine.record import Draft, Recorder
from racesim.engine.sessions import DEADLOCK_SETTLE, sent
from racesim.engine.waits import Monitor, cycle_blockers, deadlock_victim
from racesim.errors import HarnessError, InputError, Problem
from racesim.model.history import EventKind
from racesim.model.plan import Step
from racesim.system import Call, InjectedFault, System


class Dispatch:
    """Sends the runs' calls, as the schedule's steps say, and records what they do."""

    def __init__(
        self,
        runs: dict[str, Run],
        monitor: Monitor,
        recorder: Recorder,
        options: Options,
        system: System,
        pool: SessionPool | None,
    ) -> None:
        self.runs = runs
        self.monitor = monitor
        self.recorder = recorder
        self.options = options
        self.system = system
        self.pool = pool
        self.mailbox: dict[str, Any] = {}
        """What each run has sent, by the sending run's name."""

    def step(self, step: Step) -> None:
        """The run's next call (or, while it waits, the completion of its waiting one)."""
        run = self.runs[step.actor]
        if run.pending is not None:
            if step.call and step.call != run.pending.name:
                raise mismatch(step, run.pending.name, f"is still waiting in {run.pending.name}")
            self.finish(run, step)
            return
        call = run.next_call
        if call is None:
            raise mismatch(step, None, f"has finished ({run.finished})")
        if step.call and step.call != call.name:
            raise mismatch(step, call.name, f"makes {call.name} next")
        run.started = True
        run.split = self._splits(run, call)
        sent(run.conn, forget=True)
        self._let_waits_settle()
        reply = self._send(run, call)
        if reply is not None:
            self.record([self.complete(run, call, reply, "step", step.label, step.line)])
            return
        run.pending, run.pending_label, run.pending_line = call, step.label, step.line
        closed_cycle = run.closed_cycle
        if closed_cycle:
            self._resolve_deadlock(run)
        wait = self.recorder.event(
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
            # What the deadlock ended is recorded as the schedule reaches it, and the
            # state is read then: when the server's check ran is not recorded.
            self.recorder.record([wait], watch=False)
        else:
            self.record([wait])

    def record(self, drafts: list[Draft]) -> None:
        """Record ``drafts``, then the completions of waiting steps they released."""
        self.recorder.record(drafts + self.settle())

    def _send(self, run: Run, call: Call) -> Reply | None:
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
            self.monitor.await_exit(run.pid)
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
        reply = self.wait(run, first=True)
        run.blocked_after = time.perf_counter() - run.sent_at
        return reply

    def _splits(self, run: Run, call: Call) -> bool:
        """Whether ``call`` runs as a statement and then its commit, two steps."""
        return (
            self.options.split_commits
            and call.kind == "sql"
            and not call.fault
            and run.conn is not None
            and run.conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
            and changes_data(call.sql)
        )

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

    def wait(self, run: Run, first: bool = False) -> Reply | None:
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
                if first and deadlock_victim(reply):
                    run.held, run.closed_cycle = reply, True
                    return None
                return reply
            if self.monitor.blocked(run, first):
                return None
            if time.perf_counter() > deadline:
                assert run.conn is not None
                run.conn.cancel_safe()
                return run.worker.reply(self.options.step_bound) or (
                    False,
                    HarnessError(f"{run.actor.name}: step did not end after cancel"),
                )

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
            if checked and self.monitor.is_blocked(run):
                pids = self.monitor.blocking_pids(run.step_pid())
                if not self.monitor.closes_cycle(run, pids):
                    break  # the check reordered the waits instead; it waits on, in no cycle
        run.closed_cycle = False
        gone: set[int] = set()
        if run.held is not None:  # it ended: what it held is let go
            gone = set(run.backend_pids())
            named = cycle_blockers(run.held[1], gone)
            if named:
                run.blocked_by = self.monitor.names(named)
        for other in self.runs.values():
            while other is not run and other.waits_in_server():
                assert other.worker is not None
                other.held = other.worker.reply(self.options.poll)
                if other.held is not None or time.perf_counter() > deadline:
                    break
                if self.monitor.is_blocked(other) and not (
                    self.monitor.blocking_pids(other.step_pid()) & gone
                ):
                    break

    def finish(self, run: Run, step: Step | None = None) -> bool:
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
                self.record([self.complete(run, call, reply, "done", label, line)])
                return True
            if time.perf_counter() > deadline:
                self.recorder.history.stuck = (
                    f"{run.actor.name} waits in {run.pending.name} for a lock that no"
                    " remaining step can release: the schedule can never finish"
                )
                self.recorder.record(
                    [
                        self.recorder.event(
                            "stuck",
                            run.actor.name,
                            run.pending.name,
                            step.label if step else "",
                            step.line if step else None,
                        )
                    ]
                )
                return False

    def settle(self) -> list[Draft]:
        """Completions of waiting steps that the last step released."""
        done: list[Draft] = []
        progress = True
        while progress:
            progress = False
            for run in self.runs.values():
                if run.pending is None:
                    continue
                reply = self.wait(run)
                if reply is None:
                    continue
                call, run.pending = run.pending, None
                done.append(
                    self.complete(run, call, reply, "done", run.pending_label, run.pending_line)
                )
                progress = True
        return done

    def complete(
        self,
        run: Run,
        call: Call,
        reply: Reply,
        kind: EventKind,
        label: str,
        line: int | None,
    ) -> Draft:
        """The call's completion as a draft event; the run goes on to its next call."""
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
        run.answer(call, reply)
        error = sqlstate = None
        if not ok:
            error = describe(value)
            sqlstate = getattr(value, "sqlstate", None)
        return self.recorder.event(
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


def mismatch(step: Step, actual: str | None, why: str) -> InputError:
    """The error for a schedule step that is not what its run does next."""
    fix = f"write '{step.actor}: {actual}'" if actual else f"remove this step of {step.actor}"
    if actual and actual.endswith(COMMIT):
        # A file written before split commits names the statement alone.
        fix += " (or set split_commits = false to run each statement to its commit in one step)"
    return InputError(
        Problem(
            ("" if step.line else "schedule: ")
            + f"step '{step.label + ' ' if step.label else ''}{step.actor}: {step.call}'"
            f" does not match the program: {step.actor} {why}",
            line=step.line,
            hint=fix,
        )
    )
