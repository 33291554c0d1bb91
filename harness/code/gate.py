"""A user's function running in a thread of its own, one statement at a time.

The function runs on a connection whose every round trip first *arrives* at the
gate: it parks there, with its SQL and the user's source line known, until the
engine *releases* it. A step is one release: the statement goes to the server, and
the step ends when the function parks at its next statement, returns, or raises.
While the statement waits on a lock the step has not ended, so the engine sees the
session blocked exactly as it sees a store call blocked.

Once a run is stopped (its schedule ended, or the run was dropped), every
statement the function would still send raises ``Stopped`` instead: nothing more
reaches the server from it, and racesim rolls its session back itself.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from racesim.code.foreign import in_function
from racesim.code.statements import Statement
from racesim.errors import HarnessError

__all__ = ["FunctionRun", "Stopped"]

PARK_BOUND = 30.0
"""Seconds a function may run Python code before its first statement before racesim
gives up on it."""

PYTHON_BOUND = 5.0
"""Seconds a function may run Python code after a statement's round trip, before its
next statement or its end (below the engine's bound on a step, which it is part of)."""


class _Threads:
    """Daemon threads kept for the next run once a function has ended (starting a thread
    per run costs more than a run's steps on a busy machine)."""

    def __init__(self) -> None:
        self._idle: queue.SimpleQueue[queue.SimpleQueue[Callable[[], None]]] = queue.SimpleQueue()

    def run(self, body: Callable[[], None]) -> None:
        try:
            inbox = self._idle.get_nowait()
        except queue.Empty:
            inbox = queue.SimpleQueue()
            threading.Thread(
                target=self._loop, args=(inbox,), name="racesim-code", daemon=True
            ).start()
        inbox.put(body)

    def _loop(self, inbox: queue.SimpleQueue[Callable[[], None]]) -> None:
        while True:
            inbox.get()()
            self._idle.put(inbox)


_THREADS = _Threads()


class Stopped(BaseException):
    """Raised into a function's thread at a statement when its run has been stopped
    (a BaseException, so the function's own ``except Exception`` does not catch it)."""


@dataclass
class Done:
    """How the function ended: its return value, or what it raised."""

    ok: bool
    value: Any


class FunctionRun:
    """One call of a user's function, gated statement by statement."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._cond = threading.Condition()
        self.parked: Statement | None = None
        """The statement the function waits to send (None while it runs or once done)."""
        self._released = False
        self._stopped = False
        self.done: Done | None = None
        self.count = 0
        """Statements released so far."""
        self._outcome: tuple[bool, Any] = (True, None)
        self._finished = False
        self.slow: Statement | None = None
        """The statement after which the function ran Python past ``PYTHON_BOUND``."""
        self._last: Statement | None = None
        self.on_release: Callable[[Statement], None] = lambda statement: None
        self.told: set[str] = set()
        """The notes the function's system has given (racesim.code.foreign)."""

    # -- the function's side ------------------------------------------------

    def start(self, body: Callable[[], Any]) -> None:
        """Run ``body`` (the user's call) in its own thread."""

        def main() -> None:
            in_function(self.told)
            try:
                done = Done(True, body())
            except Stopped:
                done = Done(False, Stopped())
            except BaseException as exc:  # the function's own outcome, recorded
                done = Done(False, exc)
            finally:
                in_function(None)
            with self._cond:
                self.done = done
                self.parked = None
                self._cond.notify_all()

        _THREADS.run(main)

    def arrive(self, statement: Statement) -> None:
        """Park at ``statement`` until released; ``Stopped`` once the run is stopped."""
        with self._cond:
            if self._stopped:
                raise Stopped()
            self.parked = statement
            self._cond.notify_all()
            while not self._released and not self._stopped:
                self._cond.wait()
            self.parked = None
            if self._stopped:
                raise Stopped()
            self._released = False
            self._finished = False
            self._last = statement
            self.count += 1
        self.on_release(statement)

    def finished_statement(self, ok: bool, value: Any) -> None:
        """The released statement's round trip is over: its status, or its error."""
        with self._cond:
            self._outcome = (ok, value)
            self._finished = True
            self._cond.notify_all()

    # -- the engine's side --------------------------------------------------

    def next_statement(self, bound: float = PARK_BOUND) -> Statement | None:
        """The statement the function waits to send next; None once it has ended."""
        with self._cond:
            if self.slow is not None:  # over its bound already: the watch says so
                return None
            if not self._cond.wait_for(lambda: self.parked is not None or self.done, bound):
                raise HarnessError(
                    f"{self.name}: the function neither sent a statement nor returned within"
                    f" {bound:g}s"
                )
            return self.parked

    def step(self, *where: str, bound: float = PARK_BOUND) -> Any:
        """Release the parked statement; return its status (or raise its error) once the
        function has parked at its next statement or ended. ``where`` is the statement's
        source line as the step shows it (not used here)."""
        with self._cond:
            if self.parked is None:
                raise HarnessError(f"{self.name}: no statement is waiting to be sent")
            self._outcome = (True, None)
            self._released = True
            self._cond.notify_all()
            self._cond.wait_for(lambda: self._released is False, bound)
            # the round trip takes what the server takes (a lock wait: the engine sees it)
            self._cond.wait_for(lambda: self._finished or self.parked is not None or self.done)
            ended = self._cond.wait_for(
                lambda: self.parked is not None or self.done, min(bound, PYTHON_BOUND)
            )
            if not ended:  # the system's watch (checks.problems) stops the run with it
                self.slow = self._last
            ok, value = self._outcome
        if not ok:
            assert isinstance(value, BaseException)
            raise value
        return value

    def stop(self) -> None:
        """No statement of this run reaches the server any more."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
