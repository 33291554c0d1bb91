"""The engine: runs a plan's actors in exactly the order its schedule says.

Each actor is one run of a caller's program on its own session. The engine opens
the runs and takes the schedule's entries one by one: a step goes to
``dispatch`` (send the call, see it wait or reply), an outage to ``outages``, a
clock move to the virtual clock; ``record`` writes each event into the history,
with the system's watched state after it, and through the checks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import psycopg

from racesim.checks.invariants import Checker
from racesim.engine import clock as vclock
from racesim.engine.actors import Run, apply_session_options, describe
from racesim.engine.dispatch import Dispatch
from racesim.engine.options import Options as Options
from racesim.engine.outages import Outages
from racesim.engine.pool import SessionPool
from racesim.engine.record import Recorder
from racesim.engine.sessions import Worker, configure, open_session, sent
from racesim.engine.waits import Monitor
from racesim.errors import HarnessError
from racesim.model.history import History
from racesim.model.outcome import Outcome as Outcome
from racesim.model.plan import Actor, ClockMove, Outage, Plan, Step, format_delta, label_offset
from racesim.system import DEFAULT_SYSTEM, RunContext, Session, System, resolve


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
        if plan.split_commits is not None:  # the scenario file's, over the caller's
            options = replace(options, split_commits=plan.split_commits)
        self.options = options
        self.conninfo = conninfo if database else None
        self.history = History(scenario="", store=store, show=self.system.show)
        self.checker = Checker(
            self.system.invariants(plan.actors),
            compare_model=options.compare_model and self.model is not None,
        )
        self.runs: dict[str, Run] = {}
        self.offset = timedelta(0)
        self.monitor = Monitor(self.runs, options)
        self.recorder = Recorder(
            self.history, self.checker, lambda: self.clock.now(), lambda: self._watch()
        )
        self.dispatch = Dispatch(
            self.runs, self.monitor, self.recorder, options, self.system, self.pool
        )
        self.mailbox = self.dispatch.mailbox
        """What each run has sent, by the sending run's name."""
        self.outages = Outages(
            self.runs,
            self.monitor,
            self.recorder,
            options,
            self.dispatch.record,
            self._restart if self.restart_server is not None else None,
            self._reconnect,
        )

    @property
    def state(self) -> Any:
        """The watched state as last read."""
        return self.recorder.state

    # -- setup and teardown -------------------------------------------------

    def open(self) -> None:
        try:
            self._open()
        except psycopg.OperationalError as exc:
            raise self._lost(exc) from None

    def _open(self) -> None:
        if self.pool is not None:
            self.pool.reset()
            self.monitor.conn = self.pool.monitor
        elif self.conninfo is not None:
            self.monitor.conn = open_session(self.conninfo, application_name="racesim-monitor")
            if self.variant.prepare is not None:
                self.variant.prepare(self.monitor.conn)
        self.clock = vclock.VirtualClock(vclock.EPOCH + self.plan.start_offset(), self.monitor.conn)
        make_world = self.variant.world
        self.world = make_world(self.clock.now) if make_world is not None else None
        shadow_world = None
        if self.checker.compare_model and self.model is not None and self.model.world:
            shadow_world = self.model.world(self.clock.now)
        for index, actor in enumerate(self.plan.actors):
            self.runs[actor.name] = self._start(index, actor, shadow_world)

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
        if self.monitor.conn is not None:
            self.monitor.conn.close()

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
                    if run.pending is not None and not self.dispatch.finish(run):
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
            self.outages.take(entry)
        else:
            self._step(entry)

    def _step(self, step: Step) -> None:
        self.dispatch.step(step)

    def _clock(self, move: ClockMove) -> None:
        self.offset += move.delta
        self.clock.advance(move.delta)
        moved = self.recorder.event(
            "clock", "clock", format_delta(move.delta), move.label, move.line
        )
        self.recorder.record([moved])

    def _watch(self) -> Any:
        """The system's watched state now (from the monitor, or the in-memory world)."""
        if self.monitor.conn is None:
            return self.variant.watch(self.world)
        return self.variant.watch(self.monitor.conn)

    # -- a server restart: the sessions it takes, opened again --------------

    def _restart(self) -> None:
        """Restart the server; then the monitor (and, pooled, every session) first:
        reconnected runs then get sessions of their own that the pool's reconnect
        does not close again."""
        assert self.restart_server is not None
        self.restart_server()
        if self.monitor.conn is not None:
            self.monitor.conn.close()
            self.monitor.conn = (
                self.pool.reconnect()
                if self.pool is not None
                else open_session(self.conninfo or "", application_name="racesim-monitor")
            )
            self.clock.rebind(self.monitor.conn)

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
