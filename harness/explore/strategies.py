"""Schedules as Hypothesis data: a configuration of runs and an interleaving over it.

``schedules()`` draws the runs first (how many, which callers, their faults),
then the schedule as a list of small integers: an actor's index, or the last
index for a clock move of +6m. Hypothesis shrinks lists (shorter) and integers
(towards 0) well, so a failing example shrinks to fewer runs, fewer steps and
fewer context switches. Choices for actors that have finished are skipped when
the schedule is driven (see :mod:`racesim.explore.drive`), so every drawn schedule runs.

Example::

    @given(schedules())
    def test_holds(s: Schedule) -> None:
        driven = drive(s.actors, s.choices, "token", pool=pool)
        assert not driven.violations
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from hypothesis import strategies as st

from racesim.explore.drive import CLOCK_MOVE, Choice
from racesim.model.plan import Actor

__all__ = ["KINDS", "Schedule", "configs", "schedules"]

KINDS = ("cron", "refresh-sync", "refresh-async")
"""What a run can be; the first shrinks best (a cron run has no get_freshness step)."""

_FAULTS = {
    "cron": ("persist_fails", "crash_before_clear"),
    "refresh-sync": ("persist_fails", "crash_before_clear"),
    "refresh-async": ("invoke_fails",),
    "background": ("lock_check_fails", "persist_fails", "crash_before_clear"),
}
_PREFIX = {"cron": "cron", "refresh-sync": "user", "refresh-async": "user"}


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
        order = " ".join(c if isinstance(c, str) else "+6m" for c in self.choices)
        return f"Schedule({who}; {order})"


def _faults(draw: st.DrawFn, kind: str, allow: bool) -> frozenset[str]:
    if not allow:
        return frozenset()
    return frozenset(f for f in _FAULTS[kind] if draw(st.booleans()))


@st.composite
def configs(
    draw: st.DrawFn,
    max_runs: int = 4,
    faults: bool = True,
    poll: bool = True,
    max_deliveries: int = 2,
) -> tuple[Actor, ...]:
    """Runs of the reference callers: 1..max_runs of cron / refresh (sync or async).

    An async refresh gets 0..``max_deliveries`` background invocations (two is
    the platform's duplicate delivery); ``poll`` may add the page's poller.
    """
    n = draw(st.integers(1, max_runs))
    used: Counter[str] = Counter()
    actors: list[Actor] = []

    def name(prefix: str) -> str:
        used[prefix] += 1
        return prefix if used[prefix] == 1 else f"{prefix}{used[prefix]}"

    for _ in range(n):
        kind = draw(st.sampled_from(KINDS))
        me = name(_PREFIX[kind])
        if kind == "cron":
            actors.append(Actor(me, "cron", {}, _faults(draw, kind, faults)))
            continue
        mode = kind.removeprefix("refresh-")
        actors.append(Actor(me, "refresh", {"mode": mode}, _faults(draw, kind, faults)))
        if mode == "async":
            for i in range(draw(st.integers(0, max_deliveries))):
                bg = Actor(
                    f"{me}-bg{i + 1}",
                    "background",
                    {"invoked_by": me},
                    _faults(draw, "background", faults),
                )
                actors.append(bg)
    if poll and draw(st.booleans()):
        actors.append(Actor("page", "poll", {"polls": 3}))
    return tuple(actors)


@st.composite
def schedules(
    draw: st.DrawFn,
    max_runs: int = 4,
    max_steps: int = 40,
    faults: bool = True,
    clock: bool = True,
    poll: bool = True,
) -> Schedule:
    """A configuration and a schedule over it (at most ``max_steps`` choices)."""
    actors = draw(configs(max_runs=max_runs, faults=faults, poll=poll))
    top = len(actors) if clock else len(actors) - 1
    picks = draw(st.lists(st.integers(0, top), max_size=max_steps))
    choices: list[Choice] = [CLOCK_MOVE if i == len(actors) else actors[i].name for i in picks]
    return Schedule(actors, tuple(choices))
