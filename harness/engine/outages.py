"""A schedule's outages: a run's session terminated, the monitor session
terminated, the server restarted. Each is an event in the history like a step."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import psycopg

from racesim.engine.actors import Run, describe
from racesim.engine.options import Options
from racesim.engine.record import Draft, Recorder
from racesim.engine.sessions import sent
from racesim.engine.waits import Monitor
from racesim.errors import HarnessError, InputError, Problem
from racesim.model.plan import Outage


class Outages:
    """Carries out outage entries on the runs.

    ``record_settled`` records events with the completions they released;
    ``restart`` restarts the server and opens a new monitor session (None when
    the run has no server of racesim's own to restart); ``reconnect`` gives a run
    that has not started a new session after a restart.
    """

    def __init__(
        self,
        runs: dict[str, Run],
        monitor: Monitor,
        recorder: Recorder,
        options: Options,
        record_settled: Callable[[list[Draft]], None],
        restart: Callable[[], None] | None,
        reconnect: Callable[[Run], None],
    ) -> None:
        self.runs = runs
        self.monitor = monitor
        self.recorder = recorder
        self.options = options
        self.record_settled = record_settled
        self.restart = restart
        self.reconnect = reconnect

    def take(self, outage: Outage) -> None:
        if outage.kind == "restart":
            self._restart(outage)
        elif outage.target == "monitor":
            if self.monitor.conn is not None:
                # It goes, as asked; the next look through it fails the run.
                with contextlib.suppress(psycopg.OperationalError):
                    self.monitor.conn.execute("SELECT pg_terminate_backend(pg_backend_pid())")
            terminated = self.recorder.event(
                "outage",
                "monitor",
                "terminate",
                outage.label,
                outage.line,
                result="monitor session terminated",
            )
            self.recorder.record([terminated])
        else:
            run = self.runs[outage.target]
            if run.conn is not None and not run.closed:
                self.monitor.terminate(run.pid)
            events = self._lose(run, outage, "crashed: backend terminated", "backend terminated")
            self.record_settled(events)

    def _lose(self, run: Run, outage: Outage, why: str, result: str) -> list[Draft]:
        """The run's session is gone: its waiting step fails, and the run crashes."""
        events = self._interrupted(run) if run.conn is not None else []
        run.crash(why)
        call = "restart" if outage.kind == "restart" else "terminate"
        events.append(
            self.recorder.event(
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
            self.recorder.event(
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
        if self.monitor.conn is not None and self.restart is None:
            raise InputError(
                Problem(
                    "'restart server' needs racesim's own local cluster",
                    line=outage.line,
                    hint="run without --dsn / --pg dsn",
                )
            )
        if self.restart is not None:
            self.restart()
        events: list[Draft] = []
        for run in self.runs.values():
            if run.finished is not None:
                continue
            if run.started:
                events += self._lose(run, outage, "crashed: server restarted", "session lost")
            elif run.conn is not None:
                self.reconnect(run)
                events.append(
                    self.recorder.event(
                        "outage",
                        run.actor.name,
                        "restart",
                        outage.label,
                        outage.line,
                        result="reconnected",
                    )
                )
        if not events:
            events.append(
                self.recorder.event(
                    "outage",
                    "server",
                    "restart",
                    outage.label,
                    outage.line,
                    result="server restarted",
                )
            )
        self.recorder.record(events)
