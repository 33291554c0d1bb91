"""What the monitor session sees of the runs' steps: whether one waits on a lock,
on whom, and whether its wait closes a cycle of waits (a deadlock); and when a
backend that was ended has really gone.

A step is seen waiting as PostgreSQL's isolation tester sees it, with
``pg_isolation_test_session_is_blocked``; its blockers come from
``pg_blocking_pids``.
"""

from __future__ import annotations

import re
import time
from typing import Any

import psycopg

from racesim.engine.actors import Reply, Run
from racesim.engine.options import Options
from racesim.errors import HarnessError


class Monitor:
    """Looks at the runs' backends through the monitor session ``conn`` (None for an
    in-memory variant; a new one after a server restart)."""

    def __init__(self, runs: dict[str, Run], options: Options) -> None:
        self.runs = runs
        self.options = options
        self.conn: psycopg.Connection[Any] | None = None

    def _query(self, query: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        assert self.conn is not None
        return self.conn.execute(query, params).fetchall()

    def blocked(self, run: Run, sent: bool = False) -> bool:
        """True when the run's step is seen waiting (its blockers go to ``run.blocked_by``);
        for the step just ``sent``, whether its wait closed a cycle too (``run.closed_cycle``)."""
        if not self.is_blocked(run):
            return False
        pids = self.blocking_pids(run.step_pid())
        run.blocked_by = self.names(pids)
        if not sent:
            return True
        if self.closes_cycle(run, pids):
            run.closed_cycle = True
            return True
        if pids and not pids & self.waiting_pids(run).keys():
            return True  # it waits only on sessions that do not wait: no cycle
        # It waited on a waiting session yet closed no cycle, or no blocker was left:
        # the server's deadlock check may have ended its wait between the two looks.
        return self.is_blocked(run)

    def is_blocked(self, run: Run) -> bool:
        """True while the run's step waits on another of the runs' backends."""
        pid = run.step_pid()
        others = [p for r in self.runs.values() for p in r.backend_pids() if p and p != pid]
        rows = self._query("SELECT pg_isolation_test_session_is_blocked(%s, %s)", (pid, others))
        return bool(rows and rows[0][0])

    def blocking_pids(self, pid: int) -> set[int]:
        rows = self._query("SELECT pg_blocking_pids(%s)", (pid,))
        return set(rows[0][0]) if rows and rows[0][0] else set()

    def names(self, pids: set[int]) -> tuple[str, ...]:
        """The runs whose sessions are ``pids`` (``pid N`` for the others)."""
        ours = [r for r in self.runs.values() if pids & set(r.backend_pids()) and not r.closed]
        others = pids - {p for r in ours for p in r.backend_pids()}
        return tuple(r.actor.name for r in ours) + tuple(f"pid {p}" for p in sorted(others))

    def waiting_pids(self, run: Run) -> dict[int, Run]:
        """The backends of the other runs' steps that may wait in the server, by pid."""
        return {r.step_pid(): r for r in self.runs.values() if r is not run and r.waits_in_server()}

    def closes_cycle(self, run: Run, blockers: set[int]) -> bool:
        """True when ``run``'s wait on ``blockers`` closes a cycle of waits: the
        server's deadlock check then ends one of them (``run``'s own: see
        ``sessions.DEADLOCK_SETTLE``)."""
        waiting = self.waiting_pids(run)
        if not blockers & waiting.keys():
            return False
        rows = self._query(
            "SELECT p, pg_blocking_pids(p) FROM unnest(%s::int[]) AS p", (list(waiting),)
        )
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

    def terminate(self, pid: int) -> None:
        """pg_terminate_backend, then wait until the backend is really gone."""
        self._query("SELECT pg_terminate_backend(%s)", (pid,))
        self.await_exit(pid)

    def await_exit(self, pid: int) -> None:
        """Wait until the server has let go of backend ``pid``.

        Closing a connection returns before its backend has exited, and only the
        exit releases the session's locks (advisory locks included): a crash is
        complete once the backend is gone from ``pg_stat_activity``.
        """
        if self.conn is None or not pid:
            return
        deadline = time.perf_counter() + self.options.step_bound
        while self._query("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)):
            if time.perf_counter() > deadline:
                raise HarnessError(
                    f"backend {pid} was still running {self.options.step_bound:g}s after its"
                    " session ended; its locks may still be held, so nothing after it is checked"
                )
            time.sleep(self.options.poll)


def deadlock_victim(reply: Reply) -> bool:
    """True when the reply is the server's deadlock error (SQLSTATE 40P01)."""
    ok, value = reply
    return not ok and getattr(value, "sqlstate", None) == "40P01"


def cycle_blockers(error: Any, own: set[int]) -> set[int]:
    """The backends a deadlock error says ``own``'s backend waited on (its detail
    lists the cycle: ``Process P waits for ...; blocked by process Q.``)."""
    diag = getattr(error, "diag", None)
    detail = getattr(diag, "message_detail", None) or ""
    found = re.findall(r"Process (\d+) waits for .*?; blocked by process (\d+)\.", detail)
    return {int(q) for p, q in found if int(p) in own}
