"""What a system tells exploration: the kinds of run it may draw, named
configurations of runs, and the time windows clock moves aim at."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from racesim.model.plan import Actor

__all__ = ["MICROSECOND", "Config", "Followers", "RunKind", "Window"]


@dataclass(frozen=True)
class RunKind:
    """A kind of run exploration may draw: ``program`` with ``options``, named
    ``prefix``, ``prefix2``, ...; ``faults`` are the ones exploration may give it."""

    name: str
    program: str
    prefix: str
    options: Mapping[str, Any] = field(default_factory=dict)
    faults: tuple[str, ...] = ()
    followers: Followers | None = None


@dataclass(frozen=True)
class Followers:
    """Runs started by a run's ``send`` (0 to ``most`` of them), e.g. a message's consumers.

    Follower ``i`` of run ``lead`` is named ``f"{lead}{suffix}{i}"`` and gets the
    option ``link = lead`` (its program receives from the run that option names).
    """

    kind: RunKind
    most: int
    link: str
    suffix: str = "-"


@dataclass(frozen=True)
class Config:
    """A named configuration for exploration.

    Either fixed ``actors`` (every strategy runs exactly these; ``faults`` lists,
    per actor, faults a state machine may add), or ``kinds`` to draw up to
    ``max_runs`` runs from (plus each of ``observers`` or not). Strategies that
    need fixed runs (exhaustive, PCT) take a drawn configuration's ``roster()``.
    """

    description: str = ""
    actors: tuple[Actor, ...] = ()
    kinds: tuple[RunKind, ...] = ()
    observers: tuple[RunKind, ...] = ()
    max_runs: int = 4
    faults: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    clock: bool = True
    """Exploration may move the clock."""

    def roster(self) -> tuple[Actor, ...]:
        """The fixed runs: ``actors``, else one run of each kind with its most followers."""
        if self.actors:
            return self.actors
        out: list[Actor] = []
        for kind in (*self.kinds, *self.observers):
            name = kind.prefix if all(a.name != kind.prefix for a in out) else f"{kind.prefix}2"
            out.append(Actor(name, kind.program, dict(kind.options)))
            f = kind.followers
            for i in range(f.most if f else 0):
                assert f is not None
                out.append(
                    Actor(
                        f"{name}{f.suffix}{i + 1}",
                        f.kind.program,
                        {**f.kind.options, f.link: name},
                    )
                )
        return tuple(out)


MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True)
class Window:
    """A time window of the system, e.g. "a marker older than 5 minutes is stale".

    Exploration moves the clock past it (``length`` plus a minute) and to its
    exact boundary and one microsecond either side. With ``since`` (the window's
    start read from the watched state, or None), a boundary move lands the next
    step exactly at ``since + length`` (± 1 µs); without it, the move is
    ``length`` (± 1 µs) itself.
    """

    length: timedelta
    since: Callable[[Any], datetime | None] | None = None
    name: str = ""

    def offsets(self) -> tuple[timedelta, ...]:
        """The boundary and one microsecond either side."""
        return (-MICROSECOND, timedelta(0), MICROSECOND)
