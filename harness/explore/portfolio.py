"""The ``portfolio`` strategy: several seeded searches taking turns, one schedule each.

No single search finds every race quickly: PCT at a small depth finds a race of
two or three ordering constraints in a few dozen schedules of a fixed set of
runs, but a race that needs one run *left out* (so that a known race does not
end every schedule first), a fault or a clock move at a window's boundary is
rare there. The portfolio interleaves, schedule by schedule:

``pct-d2``, ``pct-d3``  PCT (:func:`racesim.explore.search.pct`'s schedule) over
                        the configuration's whole roster at depth 2 and 3, with a
                        clock move in half of the schedules;
``swarm``               swarm testing (after Groce et al.): each schedule keeps a
                        random subset of the roster's runs (a follower only with
                        its leader), gives each kept run a random subset of the
                        faults it may have, and runs a PCT schedule of a random
                        depth 1 to 3 over them, with a clock move in half of them.

Everything is drawn from ``random.Random`` seeded by the seed, the member and the
schedule's number, so a seed decides the whole search. Members take turns in a
fixed order until ``schedules`` were run or ``deadline`` passed; each keeps
going after a finding (the deeper races a known one hides are still hunted),
and the result says what each member ran and found.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta

from racesim.engine.loop import Options
from racesim.engine.pool import SessionPool
from racesim.explore.drive import Aim, Drive, Driven, clock_moves
from racesim.explore.pct import MAX_STEPS, change_points, prioritised
from racesim.explore.steps import SearchResult
from racesim.model.plan import Actor
from racesim.system import Config, System

__all__ = ["DEFAULT_SCHEDULES", "Member", "PortfolioResult", "candidates", "portfolio"]

DEFAULT_SCHEDULES = 300
"""Schedules the portfolio runs when given neither a count nor a budget."""


@dataclass
class Member:
    """One search of the portfolio: what it ran and when it first saw each violation."""

    name: str
    schedules: int = 0
    found: dict[str, tuple[int, float]] = field(default_factory=dict)
    """``invariant/cause`` -> (the member's schedule number, 1-based; seconds from the start)."""
    length: int = 0
    """The longest run this member has seen (PCT's ``k``)."""

    def describe(self) -> str:
        what = (
            ", found "
            + ", ".join(f"{k} at its schedule {n} ({s:.2f}s)" for k, (n, s) in self.found.items())
            if self.found
            else ", found nothing"
        )
        return f"{self.name} {self.schedules} schedules{what}"


@dataclass
class PortfolioResult(SearchResult):
    members: list[Member] = field(default_factory=list)

    def describe(self) -> str:
        return "portfolio: " + "; ".join(m.describe() for m in self.members)


def candidates(config: Config, system: System) -> list[tuple[Actor, tuple[str, ...], str | None]]:
    """The roster's runs, each with the faults exploration may give it and its leader
    (the run it cannot go without), in the roster's order."""
    roster = config.roster()
    may: dict[str, tuple[str, ...]] = {}
    if not config.actors:
        for kind in (*config.kinds, *config.observers):
            for a in roster:
                if a.program == kind.program and dict(a.options) == dict(kind.options):
                    may.setdefault(a.name, kind.faults)
                f = kind.followers
                if f is not None and a.program == f.kind.program:
                    may.setdefault(a.name, f.kind.faults)
    out = []
    for a in roster:
        faults = tuple(
            dict.fromkeys((*sorted(a.faults), *config.faults.get(a.name, ()), *may.get(a.name, ())))
        )
        out.append((a, faults, system.trigger(a)))
    return out


def _swarm(
    rng: random.Random, pool: list[tuple[Actor, tuple[str, ...], str | None]]
) -> tuple[Actor, ...]:
    """A random subset of the runs (leaders before followers), each with random faults;
    never empty."""
    while True:
        kept: list[Actor] = []
        names: set[str] = set()
        for actor, faults, leader in pool:
            if rng.random() < 0.5 or (leader is not None and leader not in names):
                continue
            chosen = frozenset(f for f in faults if rng.random() < 0.5)
            kept.append(replace(actor, faults=chosen))
            names.add(actor.name)
        if kept:
            return tuple(kept)


def _pct_run(
    d: Drive,
    rng: random.Random,
    depth: int,
    length: int,
    moves: tuple[timedelta | Aim, ...],
    max_steps: int = MAX_STEPS,
) -> int:
    """One PCT schedule on an open drive (as :func:`racesim.explore.search.pct`);
    returns its number of steps."""
    names = [a.name for a in d.actors]
    priority = dict(
        zip(names, rng.sample(range(depth, depth + len(names)), len(names)), strict=True)
    )
    changes = change_points(rng, depth, length) if length else {}
    move_at = rng.randrange(length) if length and moves and rng.random() < 0.5 else -1
    move = moves[rng.randrange(len(moves))] if move_at >= 0 else None
    return prioritised(d, priority, changes, depth, move_at, move, max_steps)[0]


def portfolio(
    config: Config,
    store: str,
    *,
    pool: SessionPool | None = None,
    seed: int = 0,
    schedules: int | None = DEFAULT_SCHEDULES,
    deadline: float | None = None,
    progress: Callable[[SearchResult], None] | None = None,
    system: System,
    offer: Callable[[Driven], None] | None = None,
) -> PortfolioResult:
    """Run the members in turn until ``schedules`` or ``deadline``; ``offer`` sees each
    violating run as it happens (the shortest per key is also kept in ``found``)."""
    found = system
    moves: tuple[timedelta | Aim, ...] = clock_moves(found) if config.clock else ()
    roster = config.roster()
    pool_of_runs = candidates(config, found)
    members = [Member("pct-d2"), Member("pct-d3"), Member("swarm")]
    result = PortfolioResult(members=members)
    started = time.monotonic()
    turn = 0
    while (schedules is None or result.explored < schedules) and (
        deadline is None or time.monotonic() <= deadline
    ):
        member = members[turn % len(members)]
        turn += 1
        index = ["pct-d2", "pct-d3", "swarm"].index(member.name)
        rng = random.Random((seed * 1_000_003 + member.schedules) * 8 + index)
        if member.name == "swarm":
            actors = _swarm(rng, pool_of_runs)
            depth = rng.randint(1, 3)
            length = member.length
        else:
            actors, depth, length = roster, int(member.name[-1]), member.length
        with Drive(
            actors, store, pool=pool, seed=seed, options=Options(stop_at_first=True), system=found
        ) as d:
            steps = _pct_run(d, rng, depth, length, moves)
            driven = d.driven()
        member.length = max(member.length, steps)
        member.schedules += 1
        result.explored += 1
        for v in driven.first:
            member.found.setdefault(v.key, (member.schedules, time.monotonic() - started))
            best = result.found.get(v.key)
            if best is None or driven.steps < best.steps:
                result.found[v.key] = driven
        if driven.violations and offer is not None:
            offer(driven)
        if progress is not None:
            progress(result)
    result.seconds = time.monotonic() - started
    return result
