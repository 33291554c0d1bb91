"""Seeded PCT sampling (Burckhardt et al.): each schedule gives the actors random
distinct priorities and picks ``depth - 1`` change points uniformly over the
steps of the run (its real length, estimated from the earlier schedules' runs);
the highest-priority enabled actor always steps, and after a change point's step
the running actor drops to a low priority. Seeded: schedule ``i`` of seed ``s``
is the same everywhere.

Clock moves and faults: half of the schedules make one clock move (drawn from
the system's clock moves, aimed at its time windows' boundaries) before one of
the run's steps, and half add one of the faults the configuration's runs may
have; the result counts both.

Example::

    result = pct(config.roster(), "skiplocked", pool=pool, seed=1, schedules=200,
                 system=system, faults=config.faults)
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from datetime import timedelta

from racesim.engine.loop import Options
from racesim.engine.pool import SessionPool
from racesim.explore.drive import Aim, Drive, clock_moves
from racesim.explore.steps import Progress, SearchResult, keep_shortest, with_faults
from racesim.model.plan import Actor
from racesim.system import System

__all__ = ["MAX_STEPS", "change_points", "pct", "prioritised"]

MAX_STEPS = 10_000
"""PCT stops a run after this many steps (only a program that never ends gets there)."""


def change_points(rng: random.Random, depth: int, length: int) -> dict[int, int]:
    """PCT's ``depth - 1`` change points, uniformly over the steps ``1..length`` of a
    run (1-based: change point ``c`` comes after the run's ``c``-th step), each
    mapped to its rank ``1..depth - 1``. A run shorter than ``depth - 1`` steps gets
    one point per step."""
    count = min(depth - 1, length)
    return {c: j for j, c in enumerate(rng.sample(range(1, length + 1), count), 1)}


def prioritised(
    d: Drive,
    priority: dict[str, int],
    changes: Mapping[int, int],
    depth: int,
    move_at: int,
    move: timedelta | Aim | None,
    max_steps: int,
) -> tuple[int, bool]:
    """Run one PCT schedule on an open drive: always the enabled actor of highest
    priority, lowered at each change point, and ``move`` made before step ``move_at``.
    Returns the number of steps and whether the clock move was made."""
    steps, moved = 0, False
    while steps < max_steps and not d.over:
        if move is not None and steps == move_at:
            moved = d.take(move) is not None
        enabled = d.enabled()
        if not enabled:
            break
        chosen = max(enabled, key=lambda a: priority[a])
        d.take(chosen)
        steps += 1
        if steps in changes:
            priority[chosen] = depth - changes[steps]
    return steps, moved


def pct(
    actors: tuple[Actor, ...],
    store: str,
    *,
    pool: SessionPool | None = None,
    seed: int = 0,
    depth: int = 3,
    max_steps: int = MAX_STEPS,
    clock: bool = True,
    schedules: int | None = None,
    deadline: float | None = None,
    progress: Progress | None = None,
    system: System,
    faults: Mapping[str, tuple[str, ...]] | None = None,
) -> SearchResult:
    """Seeded PCT sampling until ``schedules`` were run or ``deadline`` passed.

    As PCT (Burckhardt et al.) asks, change points are drawn over the run's real
    length ``k``: schedule 0 runs by the priorities alone and its length is the
    first estimate; every later schedule draws over the longest run so far (how
    long a run is depends only on earlier schedules, so the seed still decides
    everything). ``max_steps`` only stops a program that never ends.

    A schedule makes at most one clock move (half of them do), drawn from the
    system's clock moves, before one of its ``k`` steps; given ``faults`` (actor ->
    faults it may have), half of the schedules add one of them to its actor.
    ``complete`` stays False:
    sampling never shows that no schedule violates.
    """
    found = system
    moves = clock_moves(found) if clock else ()
    variants = with_faults(actors, faults or {})
    result = SearchResult()
    started = time.monotonic()
    length = 0  # the longest run so far: PCT's k (0 before the first run)
    i = 0
    while (schedules is None or i < schedules) and (
        deadline is None or time.monotonic() <= deadline
    ):
        rng = random.Random(seed * 1_000_003 + i)
        i += 1
        names = [a.name for a in actors]
        priority = dict(
            zip(names, rng.sample(range(depth, depth + len(names)), len(names)), strict=True)
        )
        changes = change_points(rng, depth, length) if length else {}
        move_at = rng.randrange(length) if length and moves and rng.random() < 0.5 else -1
        move = moves[rng.randrange(len(moves))] if move_at >= 0 else None
        run = actors
        if len(variants) > 1 and rng.random() < 0.5:
            run = variants[rng.randrange(1, len(variants))][0]
            result.faulted += 1
        with Drive(
            run, store, pool=pool, seed=seed, options=Options(stop_at_first=True), system=found
        ) as d:
            steps, moved = prioritised(d, priority, changes, depth, move_at, move, max_steps)
            result.moved += moved
            length = max(length, steps)
            result.explored += 1
            keep_shortest(result, d.driven())
        if progress is not None:
            progress(result)
    result.seconds = time.monotonic() - started
    return result
