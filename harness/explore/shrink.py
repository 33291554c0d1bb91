"""A last, greedy shrink of a counterexample, on the schedule as it was executed.

Hypothesis shrinks the *drawn* data; a schedule that is short to draw (a fault,
then the actors drained one after another) can still be long to read. This pass
works on the executed plan: it tries dropping a run (with the runs its sends
start), putting a simpler run in its place (the system's ``simplify``), dropping
a fault, or one entry, and keeps any change after which the same invariant
breaks for the same cause at the first violating step and the counterexample
is smaller. It repeats
until nothing helps, so its result is a local minimum, and it is deterministic.

Example::

    rerun = lambda actors, choices: drive(actors, choices, "legacy", pool=pool, system=SYSTEM)
    small = shrink(driven, rerun, system=SYSTEM)
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import replace

from racesim.explore.drive import Choice, Driven
from racesim.model.plan import Actor, ClockMove, Step
from racesim.system import System

__all__ = ["shrink", "size"]

Rerun = Callable[[tuple[Actor, ...], list[Choice]], Driven]


def size(driven: Driven) -> tuple[int, int, int, int, str]:
    """Smaller is a better counterexample: entries, runs, faults, context switches, text."""
    entries = driven.plan.entries
    who = [e.actor if isinstance(e, Step) else "clock" for e in entries]
    switches = sum(a != b for a, b in itertools.pairwise(who))
    faults = sum(len(a.faults) for a in driven.plan.actors)
    return (len(entries), len(driven.plan.actors), faults, switches, repr(driven.plan))


def _choices(driven: Driven) -> list[Choice]:
    return [
        e.actor if isinstance(e, Step) else e.delta
        for e in driven.plan.entries
        if isinstance(e, Step | ClockMove)
    ]


def _candidates(driven: Driven, system: System) -> Iterator[tuple[tuple[Actor, ...], list[Choice]]]:
    actors, choices = driven.plan.actors, _choices(driven)
    for victim in actors:
        gone = {victim.name} | {a.name for a in actors if system.trigger(a) == victim.name}
        yield (
            tuple(a for a in actors if a.name not in gone),
            [c for c in choices if c not in gone],
        )
    for i, actor in enumerate(actors):
        for simpler in system.simplify(actor, actors):
            yield (*actors[:i], simpler, *actors[i + 1 :]), choices
        for fault in sorted(actor.faults):
            fewer = replace(actor, faults=actor.faults - {fault})
            yield (*actors[:i], fewer, *actors[i + 1 :]), choices
    for i in reversed(range(len(choices))):
        yield actors, choices[:i] + choices[i + 1 :]


def shrink(
    driven: Driven,
    rerun: Rerun,
    max_runs: int = 500,
    *,
    system: System,
    deadline: float | None = None,
    key: str | None = None,
) -> Driven:
    """The smallest counterexample found greedily from ``driven`` for the violation
    ``key`` (default: its first), which must stay among the violations of the first
    violating step. It stops early at ``deadline`` (a ``time.monotonic()`` value),
    keeping the best found so far."""
    if not driven.violations:
        return driven
    found = system
    invariant = key or driven.violations[0].key
    best, runs = driven, 0
    improved = True
    while improved and runs < max_runs:
        improved = False
        for actors, choices in _candidates(best, found):
            if not actors:
                continue
            if deadline is not None and time.monotonic() > deadline:
                return best
            runs += 1
            tried = rerun(actors, choices)
            if any(v.key == invariant for v in tried.first) and size(tried) < size(best):
                best, improved = tried, True
                break
            if runs >= max_runs:
                break
    return best
