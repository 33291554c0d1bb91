"""Schedules as Hypothesis data: a configuration of runs and an interleaving over it.

``schedules(system, config)`` draws the runs first (how many, of which of the
system's run kinds, their faults, their followers), then the schedule as a list
of small integers: an actor's index, or the last index for a clock move, and
then which clock move each one is (from the system's time windows: past the
window first, then its exact boundary and one microsecond either side).
Hypothesis shrinks lists (shorter) and integers (towards 0) well, so a failing
example shrinks to fewer runs, fewer steps, fewer context switches and the
plainest clock move. Choices for actors that have finished are skipped when
the schedule is driven (see :mod:`racesim.explore.drive`), so every drawn
schedule runs.

Example::

    @given(schedules(system, system.config(None, "hypothesis")))
    def test_holds(s: Schedule) -> None:
        driven = drive(s.actors, s.choices, store, pool=pool, system=system)
        assert not driven.violations
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import timedelta

from hypothesis import strategies as st

from racesim.explore.drive import Aim, Choice, clock_moves
from racesim.model.plan import Actor
from racesim.system import Config, RunKind, System

__all__ = ["Schedule", "configs", "schedules"]


@dataclass(frozen=True)
class Schedule:
    """Runs and the order in which they take their steps."""

    actors: tuple[Actor, ...]
    choices: tuple[Choice, ...]

    def __repr__(self) -> str:  # what Hypothesis prints for a falsifying example
        who = ", ".join(
            f"{a.name}={a.program}{'/' + str(a.options['mode']) if 'mode' in a.options else ''}"
            + (f"[{','.join(sorted(a.faults))}]" if a.faults else "")
            for a in self.actors
        )
        order = " ".join(
            c if isinstance(c, str) else repr(c) if isinstance(c, Aim) else _move(c)
            for c in self.choices
        )
        return f"Schedule({who}; {order})"


def _move(delta: timedelta) -> str:
    from racesim.model.plan import format_delta

    return format_delta(delta)


def _faults(draw: st.DrawFn, faults: tuple[str, ...], allow: bool) -> frozenset[str]:
    if not allow:
        return frozenset()
    return frozenset(f for f in faults if draw(st.booleans()))


@st.composite
def configs(
    draw: st.DrawFn, config: Config, faults: bool = True, observers: bool = True
) -> tuple[Actor, ...]:
    """Runs of ``config``: its fixed actors, or 1..max_runs drawn from its run kinds.

    A kind with followers gets 0..``most`` of them (each named after its leader);
    each observer is added or not.
    """
    if config.actors:
        return config.actors
    n = draw(st.integers(1, config.max_runs))
    used: Counter[str] = Counter()
    actors: list[Actor] = []

    def name(prefix: str) -> str:
        used[prefix] += 1
        return prefix if used[prefix] == 1 else f"{prefix}{used[prefix]}"

    for _ in range(n):
        kind: RunKind = draw(st.sampled_from(config.kinds))
        me = name(kind.prefix)
        actors.append(
            Actor(me, kind.program, dict(kind.options), _faults(draw, kind.faults, faults))
        )
        f = kind.followers
        if f is None:
            continue
        for i in range(draw(st.integers(0, f.most))):
            actors.append(
                Actor(
                    f"{me}{f.suffix}{i + 1}",
                    f.kind.program,
                    {**f.kind.options, f.link: me},
                    _faults(draw, f.kind.faults, faults),
                )
            )
    for kind in config.observers if observers else ():
        if draw(st.booleans()):
            actors.append(Actor(kind.prefix, kind.program, dict(kind.options)))
    return tuple(actors)


@st.composite
def schedules(
    draw: st.DrawFn,
    system: System,
    config: Config,
    max_steps: int = 40,
    faults: bool = True,
    clock: bool = True,
    observers: bool = True,
) -> Schedule:
    """A configuration and a schedule over it (at most ``max_steps`` choices)."""
    actors = draw(configs(config, faults=faults, observers=observers))
    moves = clock_moves(system) if clock and config.clock else ()
    top = len(actors) if moves else len(actors) - 1
    picks = draw(st.lists(st.integers(0, top), max_size=max_steps))
    choices: list[Choice] = []
    for i in picks:
        if i < len(actors):
            choices.append(actors[i].name)
        else:
            choices.append(draw(st.sampled_from(moves)) if len(moves) > 1 else moves[0])
    return Schedule(actors, tuple(choices))
