"""What to run: the actors and the schedule, as plain values.

A scenario file loads into a ``Plan``; explorers build them too. The engine
executes a plan against one store.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

SESSION_SETTINGS = ("lock_timeout", "statement_timeout")
"""Actor options applied to the session with SET (milliseconds)."""


@dataclass(frozen=True)
class Actor:
    """One run of a caller's program, on its own session."""

    name: str
    program: str
    options: dict[str, Any] = field(default_factory=dict)
    faults: frozenset[str] = frozenset()
    line: int | None = None


@dataclass(frozen=True)
class Step:
    """The named actor takes its next step; ``call`` is the call it must be making."""

    actor: str
    call: str = ""
    label: str = ""
    line: int | None = None


@dataclass(frozen=True)
class ClockMove:
    """Virtual time moves forward."""

    delta: timedelta
    label: str = ""
    line: int | None = None


@dataclass(frozen=True)
class Outage:
    """Something happens to the database: ``terminate`` an actor's backend (or the
    harness's own monitor session), or ``restart`` the server."""

    kind: str
    target: str
    label: str = ""
    line: int | None = None


Entry = Step | ClockMove | Outage


@dataclass(frozen=True)
class Plan:
    actors: tuple[Actor, ...]
    entries: tuple[Entry, ...]
    seed: int = 0
    split_commits: bool | None = None
    """Whether the run splits commits (a scenario file's ``split_commits``); None: the
    engine's ``Options.split_commits`` decides."""

    def start_offset(self) -> timedelta:
        """Where the clock starts, from the earliest label (``T-3`` comes before ``T+0``)."""
        labels = [e.label for e in self.entries if e.label]
        return min((label_offset(x) for x in labels), default=timedelta(0))

    def actor(self, name: str) -> Actor:
        for a in self.actors:
            if a.name == name:
                return a
        raise KeyError(name)


def format_delta(delta: timedelta) -> str:
    """``+6m``, ``+4m59s``, ``+250ms``, ``+5m1us``: a clock move as timelines show it."""
    us = delta // timedelta(microseconds=1)
    parts = []
    for unit, size in (
        ("h", 3_600_000_000),
        ("m", 60_000_000),
        ("s", 1_000_000),
        ("ms", 1000),
        ("us", 1),
    ):
        if us >= size:
            parts.append(f"{us // size}{unit}")
            us %= size
    return "+" + ("".join(parts) or "0s")


def spell_delta(delta: timedelta) -> str:
    """A clock move as a schedule entry reads it back: one unit, exact (``+6m``, ``+300.000001s``)."""
    us = delta // timedelta(microseconds=1)
    for unit, size in (("h", 3_600_000_000), ("m", 60_000_000), ("s", 1_000_000), ("ms", 1000)):
        if us % size == 0:
            return f"+{us // size}{unit}"
    return f"+{us // 1_000_000}.{us % 1_000_000:06d}s"


LABEL = re.compile(r"^T([+-])(\d{1,6})(?:\.(\d{1,3}))?$")
"""A time point in a schedule: ``T+3``, ``T-1``, ``T+1.5`` (seconds from the start)."""


@functools.lru_cache(maxsize=4096)
def label_offset(label: str) -> timedelta:
    """How far from the start a label is: ``T+3`` -> 3 s, ``T-1.5`` -> -1.5 s."""
    m = LABEL.match(label)
    if m is None:
        raise ValueError(f"not a time label: {label!r} (write T+3 or T-1)")
    secs = int(m.group(2)) + int((m.group(3) or "0").ljust(3, "0")) / 1000
    return timedelta(seconds=secs if m.group(1) == "+" else -secs)
