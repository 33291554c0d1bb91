"""Where an actor's protocol rounds wait until the schedule lets them go.

A round is what a client sends up to the point where it waits for the server: a
simple ``Query``, or extended-protocol messages up to their ``Sync``. Each client
connection parks its next round here; ``Gate.release`` sends the oldest parked
round of the actor, and the round is done when its ``ReadyForQuery`` has gone back
to the client.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from racesim.proxy.framing import Message

_ORDER = itertools.count()


@dataclass
class Round:
    """One protocol round a client sent (not yet released)."""

    messages: list[Message]
    sql: tuple[str, ...]
    """The SQL of its Query or Parse messages, in order ("" for a bound prepared one)."""
    syncs: int
    """ReadyForQuery messages that end it (1)."""
    order: int = field(default_factory=lambda: next(_ORDER))


@dataclass
class RoundResult:
    """What the server answered to one round."""

    tags: list[str] = field(default_factory=list)
    """CommandComplete tags, in order."""
    error: tuple[str, str] | None = None
    """(SQLSTATE, message) of the first ErrorResponse, if any."""
    status: str = "I"
    """The transaction status ReadyForQuery gave (I, T or E)."""


class Gate:
    """The parked rounds of one actor's connections, and the condition that wakes on any change.

    Links (client connections) call ``park``, ``finished`` and ``fail`` from their own
    threads; the actor's store calls ``release`` and waits with ``wait_for``.
    """

    def __init__(self, actor: str) -> None:
        self.actor = actor
        self.cond = threading.Condition()
        self.links: list[LinkState] = []
        self.failure: str | None = None
        """The first protocol problem of any of the actor's connections (one line)."""
        self.connecting = 0
        """Connections accepted but not yet through their startup."""

    def wait_for(self, ready: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self.cond:
            while not ready():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)
            return True

    def notify(self) -> None:
        with self.cond:
            self.cond.notify_all()

    def fail(self, problem: str) -> None:
        with self.cond:
            if self.failure is None:
                self.failure = problem
            self.cond.notify_all()

    def oldest(self) -> LinkState | None:
        """The link whose parked round arrived first (None when none is parked)."""
        parked = [link for link in self.links if link.parked is not None and not link.closed]
        return min(parked, key=lambda link: link.parked.order if link.parked else 0, default=None)

    def release(self, link: LinkState) -> Round:
        """Let ``link``'s parked round go; it is done when ``link.running`` is None again."""
        with self.cond:
            round_ = link.parked
            assert round_ is not None
            link.parked, link.running = None, round_
            link.result = RoundResult()
            link.target = link.readies + round_.syncs
            link.let_go()
            return round_

    def busy(self) -> bool:
        """A connection is in its startup or has a released round not yet answered."""
        return self.connecting > 0 or any(link.running and not link.closed for link in self.links)


def _held() -> threading.Lock:
    lock = threading.Lock()
    lock.acquire()
    return lock


@dataclass
class LinkState:
    """What the gate sees of one client connection."""

    pid: int = 0
    """The upstream backend's pid (its BackendKeyData)."""
    parked: Round | None = None
    running: Round | None = None
    result: RoundResult = field(default_factory=RoundResult)
    readies: int = 0
    """ReadyForQuery messages relayed to the client so far."""
    target: int = 0
    """The ``readies`` count at which the running round is done."""
    closed: bool = False
    go: threading.Lock = field(default_factory=_held)
    """Held while a round is parked; released to let it go (or when the link closes)."""

    def let_go(self) -> None:
        if self.go.locked():
            self.go.release()
