"""Where an actor's protocol rounds wait until the schedule lets them go.

A round is what a client sends up to the point where it waits for the server: a
simple ``Query``, or extended-protocol messages up to their ``Sync``. Each client
connection parks its next round here; ``Gate.release`` sends the round and relays
the answer until its ``ReadyForQuery`` has gone back to the client, in the calling
thread.

The proxy has no thread of its own per connection: a thread in ``Gate.wait_for``
reads what the clients send (one thread at a time; the others wait on ``cond``), and
the thread in ``Gate.release`` does the round. So the round trip through the proxy
hands off between threads no more than a direct statement does: the client's bytes
wake the thread that waits at the gate, and the server's answer the thread that
released the round.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from collections.abc import Callable

from racesim.proxy.idle import IdleWatch
from racesim.proxy.link import Link
from racesim.proxy.rounds import Round, RoundResult

__all__ = ["Gate", "Round", "RoundResult"]


class Gate:
    """The connections of one actor, their parked rounds, and the condition that
    wakes on any change.

    Connections join with ``joined`` once through their startup; the actor's store
    waits with ``wait_for`` and calls ``release``.
    """

    def __init__(self, actor: str) -> None:
        self.actor = actor
        self.cond = threading.Condition()
        self.links: list[Link] = []
        self.failure: str | None = None
        """The first protocol problem of any of the actor's connections (one line)."""
        self.connecting = 0
        """Connections accepted but not yet through their startup."""
        self._reading = threading.Lock()
        """Held by the thread reading the clients (in ``wait_for``)."""
        self._reader = 0
        """The thread reading the clients (0: none)."""
        self._waiting = 0
        """Threads waiting on ``cond`` (notified only when there are some)."""
        self._closed = False
        self._idle: IdleWatch | None = None
        self._wake, self._waker = socket.socketpair()
        self._wake.setblocking(False)
        self._waker.setblocking(False)

    # -- the store's side -----------------------------------------------------

    def wait_for(self, ready: Callable[[], bool], timeout: float) -> bool:
        """Wait until ``ready()`` (False after ``timeout`` seconds), reading what the
        clients send meanwhile: rounds park, rounds that only prepare pass."""
        if ready():
            return True
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if not self._closed and self._reading.acquire(blocking=False):
                self._reader = threading.get_ident()
                try:
                    self._read(left)
                finally:
                    self._reader = 0
                    self._reading.release()
                if self._waiting:
                    with self.cond:
                        self.cond.notify_all()
            else:
                with self.cond:
                    self._waiting += 1
                    try:
                        if not ready():
                            self.cond.wait(min(left, 0.05))
                    finally:
                        self._waiting -= 1
            if ready():
                return True

    def _read(self, timeout: float) -> None:
        """Act on every client's whole rounds, waiting up to ``timeout`` for bytes."""
        idle, buffered = [], False
        for link in self.links:
            if not (link.closed or link.parked or link.running):
                idle.append(link)
                if link.has_round():
                    link.take(read=False)
                    buffered = True
        if buffered:
            return
        try:
            readable, _, _ = select.select([self._wake, *(k.client for k in idle)], [], [], timeout)
        except (OSError, ValueError):  # a connection closed meanwhile: look again
            return
        if self._wake in readable:
            with contextlib.suppress(OSError):
                while self._wake.recv(4096):
                    pass
        for link in idle:
            if link.client in readable:
                link.take(read=True)

    def oldest(self) -> Link | None:
        """The link whose parked round arrived first (None when none is parked)."""
        found, first = None, 0
        for link in self.links:
            parked = link.parked
            if parked is not None and not link.closed and (found is None or parked.order < first):
                found, first = link, parked.order
        return found

    def release(self, link: Link) -> Round:
        """Send ``link``'s parked round and relay its answer (returns when its
        ``ReadyForQuery`` has gone back to the client, or the link has closed)."""
        round_ = link.parked
        assert round_ is not None
        link.result = RoundResult()
        link.target = link.readies + round_.syncs
        link.running = round_  # before it is no longer parked: never seen idle meanwhile
        link.parked = None
        link.run()
        if self._reader and self._reader != threading.get_ident():
            self.notify()  # the thread reading the clients looks at this one again
        return round_

    def busy(self) -> bool:
        """A connection is in its startup."""
        return self.connecting > 0

    def close(self) -> None:
        self._closed = True
        self.notify()
        if self._idle is not None:
            self._idle.close()
        self._wake.close()
        self._waker.close()

    # -- the connections' side ------------------------------------------------

    def accepted(self) -> None:
        with self.cond:
            self.connecting += 1

    def joined(self, link: Link | None) -> None:
        """A connection is through its startup (``link``), or gave up (None)."""
        with self.cond:
            self.connecting -= 1
            if link is not None:
                self.links.append(link)
        self.notify()

    def watch(self, link: Link) -> None:
        """Relay what the server says to ``link`` between rounds as it arrives."""
        with self.cond:
            if self._idle is None and not self._closed:
                self._idle = IdleWatch()  # the first connection that listens
            idle = self._idle
        if idle is not None:
            idle.watch(link)

    def unwatch(self, link: Link) -> None:
        if self._idle is not None:
            self._idle.unwatch(link)

    def park(self, link: Link, round_: Round) -> None:
        link.parked = round_  # before it is no longer running: never seen idle meanwhile
        link.running = None
        if self._waiting:
            with self.cond:
                self.cond.notify_all()

    def closing(self, link: Link) -> bool:
        """``link`` closes: True the first time."""
        with self.cond:
            if link.closed:
                return False
            link.closed = True
        self.notify()
        return True

    def fail(self, problem: str) -> None:
        with self.cond:
            if self.failure is None:
                self.failure = problem
        self.notify()

    def notify(self) -> None:
        """Wake whoever waits in ``wait_for``."""
        with self.cond:
            self.cond.notify_all()
        if not self._closed:
            with contextlib.suppress(OSError):
                self._waker.send(b"\0")
