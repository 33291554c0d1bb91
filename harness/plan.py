"""What to run: the actors and the schedule, as plain values.

A scenario file loads into a ``Plan``; explorers build them too. The engine
executes a plan against one store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any


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

    def actor(self, name: str) -> Actor:
        for a in self.actors:
            if a.name == name:
                return a
        raise KeyError(name)


def format_delta(delta: timedelta) -> str:
    """``+6m``, ``+4m59s``, ``+250ms``: the schedule's own spelling of a clock move."""
    ms = round(delta.total_seconds() * 1000)
    parts = []
    for unit, size in (("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)):
        if ms >= size:
            parts.append(f"{ms // size}{unit}")
            ms %= size
    return "+" + ("".join(parts) or "0s")
