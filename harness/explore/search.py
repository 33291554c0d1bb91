"""Systematic schedule search: every distinct interleaving, or seeded PCT sampling
(:mod:`racesim.explore.pct`, whose names this module also offers).

**Exhaustive** (``exhaustive``) is stateless model checking: each schedule is
one fresh engine run (on a reset pooled database), chosen depth first; after a
run, the deepest step with an untried actor is changed and the run repeated.

The reduction is a *sleep set* (Godefroid): after the subtree where actor ``a``
steps first from some state has been explored, ``a``'s step is put to sleep in
the sibling subtrees and stays asleep while only steps independent of it are
taken (:func:`racesim.explore.steps.independent` says when); a run whose every
enabled actor sleeps is skipped, since each of its completions is a reordering
of independent steps of a schedule already run.

**Clock moves and faults** (``moves``, ``faults``): given clock moves, exhaustive
search also tries, at every state where an actor can step, each clock move as
one more choice, at most ``most_moves`` of them per schedule; a move conflicts
with every step (no step is reordered across it); moves are tried only once one
of the system's windows has started (before that, a move shifts every later time
alike), or with ``at_openings`` only right after a step that started one (took a
lease, set a marker). Given the faults the configuration's runs may have, it
then searches again with each one of them added (at most one added fault per
schedule). :func:`clock_choices` says what ``racesim explore`` offers: by
default one move per schedule, to each window's exact boundary, right after a
step that started it, and each fault; on the job queue's two workers that is
138 schedules against 20 interleavings.

``--shard K/N`` splits exhaustive work by the first four choices of a schedule
(a shorter schedule, by all of its choices): every shard walks the same tree as
one process down to that depth, with the same sleep sets (it runs the fourth
step of another shard's branch to learn what that step touches, then leaves the
branch), and explores only the branches that are its own. So the N shards
explore disjoint sets of schedules that together are exactly the schedules one
process explores.

**Subtrees** (``split``, ``subtree``): :func:`split` walks the tree down to the
shallowest depth with at least a given number of nodes, runs the schedules that
end above it, and returns each node there as a :class:`Subtree`: its choices
and the sleep sets along them, exactly as the depth-first search has them when it
gets there. ``exhaustive(..., subtree=s)`` explores below ``s`` alone. The
subtrees are disjoint, and together with the split's own schedules they are
exactly the schedules one process explores; they can be handed out one by one
to workers as they come free (:mod:`racesim.explore.distribute`).
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from racesim.engine.loop import Options
from racesim.engine.pool import SessionPool
from racesim.explore.drive import Aim, Drive, clock_moves
from racesim.explore.pct import MAX_STEPS, change_points, pct, prioritised
from racesim.explore.steps import (
    EVERYTHING,
    Access,
    Progress,
    SearchResult,
    access,
    independent,
    with_faults,
)
from racesim.explore.steps import keep_shortest as _keep
from racesim.explore.tree import MOVE, Frame, Subtree
from racesim.model.plan import Actor
from racesim.system import Config, System

__all__ = [
    "EVERYTHING",
    "MAX_STEPS",
    "Access",
    "SearchResult",
    "Subtree",
    "access",
    "change_points",
    "clock_choices",
    "exhaustive",
    "independent",
    "pct",
    "prioritised",
    "split",
]

SPLIT_DEPTH = 3
"""Shards split the search by a schedule's first ``SPLIT_DEPTH + 1`` choices."""
DEEPEST_SPLIT = 12
""":func:`split` stops deepening here, however few nodes it has found."""


@dataclass(frozen=True)
class ClockChoices:
    """The clock moves and added faults an exhaustive search tries."""

    moves: tuple[timedelta | Aim, ...] = ()
    most: int = 0
    """Moves per schedule, at most."""
    faults: Mapping[str, tuple[str, ...]] | None = None
    at_openings: bool = False
    """Offer a move only right after a step that started one of the system's windows
    (took a lease, set a marker), not at every state once one has started."""


def clock_choices(system: System, config: Config, most: int | None) -> ClockChoices:
    """What exhaustive search tries for ``--clock-moves most``: None (the default) is
    one move per schedule, to each window's exact boundary, made right after a step
    that started a window, and each fault a run may have; ``K`` is up to ``K``
    moves per schedule at any state once a window has started, from all of the
    system's clock moves (past each window, its boundary and a microsecond either
    side), and each fault; 0 is the interleavings alone."""
    if most == 0:
        return ClockChoices()
    if most is None:
        boundaries = tuple(Aim(i, timedelta(0)) for i in range(len(system.windows)))
        return ClockChoices(boundaries if config.clock else (), 1, config.faults, True)
    return ClockChoices(clock_moves(system) if config.clock else (), most, config.faults)


@dataclass
class _Scope:
    """Which part of the tree one walk covers."""

    shard: tuple[int, int] = (1, 1)
    cut: int = 0
    """Leave each schedule after this many choices, keeping the node (0: never)."""
    floor: int = 0
    """The frames of the subtree's own prefix, never backtracked."""
    variant: int = 0
    cuts: list[Subtree] = field(default_factory=list)

    def mine(self, choices: list[str]) -> bool:
        """Whether the schedule starting with ``choices`` (its first ``SPLIT_DEPTH + 1``,
        or all of a shorter one) is this shard's."""
        k, n = self.shard
        if n == 1:
            return True
        return zlib.crc32(" ".join(choices[: SPLIT_DEPTH + 1]).encode()) % n == k - 1

    def leaves(self, stack: list[Frame], depth: int, over: bool) -> bool:
        """After a schedule's ``depth``-th choice: whether to leave it here (another
        shard's, or a node at the cut, which is kept)."""
        if self.cut and depth == self.cut and not over:
            self.cuts.append(Subtree(self.variant, tuple(f.copy() for f in stack[:depth])))
            return True
        return depth == SPLIT_DEPTH + 1 and not self.mine([f.choice for f in stack[:depth]])


def exhaustive(
    actors: tuple[Actor, ...],
    store: str,
    *,
    pool: SessionPool | None = None,
    seed: int = 0,
    reduce: bool = True,
    shard: tuple[int, int] = (1, 1),
    deadline: float | None = None,
    progress: Progress | None = None,
    system: System,
    schedules: int | None = None,
    moves: tuple[timedelta | Aim, ...] = (),
    most_moves: int = 1,
    faults: Mapping[str, tuple[str, ...]] | None = None,
    at_openings: bool = False,
    subtree: Subtree | None = None,
) -> SearchResult:
    """Run every distinct schedule of ``actors`` (or shard ``K/N`` of them, or those
    below ``subtree``), then of ``actors`` with each one of ``faults`` (actor ->
    faults it may have) added; each schedule may make up to ``most_moves`` of
    ``moves`` at any state once a window has started (``at_openings``: only right
    after a step that started one).

    ``complete`` is False when ``deadline`` (a ``time.monotonic()`` value) came
    first, or ``schedules`` were run before the search ended. Each schedule stops at its first violation.
    """
    result = SearchResult()
    started = time.monotonic()
    variants = list(enumerate(with_faults(actors, faults or {})))
    if subtree is not None:
        variants = [variants[subtree.variant]]
    for index, (variant, added) in variants:
        scope = _Scope(shard=shard, variant=index)
        stack: list[Frame] = []
        if subtree is not None:
            scope.floor = len(subtree.frames)
            stack = [f.copy() for f in subtree.frames]
        if not _walk(
            variant, added, store, pool, seed, stack, reduce, scope, result, system,
            (moves, most_moves if moves else 0, at_openings), deadline, schedules, progress,
        ):  # fmt: skip
            break
    else:
        result.complete = True
    result.seconds = time.monotonic() - started
    return result


def split(
    actors: tuple[Actor, ...],
    store: str,
    nodes: int,
    *,
    pool: SessionPool | None = None,
    seed: int = 0,
    reduce: bool = True,
    deadline: float | None = None,
    system: System,
    moves: tuple[timedelta | Aim, ...] = (),
    most_moves: int = 1,
    faults: Mapping[str, tuple[str, ...]] | None = None,
    at_openings: bool = False,
) -> tuple[SearchResult, list[Subtree]]:
    """The nodes of the shallowest depth (at most :data:`DEEPEST_SPLIT`) with at least
    ``nodes`` of them, over every variant (or of the first depth with no more nodes
    than the one above), and the result of running the schedules that end above
    it. ``complete`` is True when the walk finished (then the subtrees and these
    schedules are the whole search)."""
    clock = (moves, most_moves if moves else 0, at_openings)
    variants = with_faults(actors, faults or {})
    fewer = 0
    for depth in range(1, DEEPEST_SPLIT + 1):
        result, cuts = SearchResult(), list[Subtree]()
        started = time.monotonic()
        for index, (variant, added) in enumerate(variants):
            scope = _Scope(cut=depth, variant=index)
            if not _walk(
                variant, added, store, pool, seed, [], reduce, scope, result, system,
                clock, deadline, None, None,
            ):  # fmt: skip
                return result, cuts + scope.cuts
            cuts += scope.cuts
        result.complete = True
        result.seconds = time.monotonic() - started
        if len(cuts) >= nodes or len(cuts) <= fewer:
            break  # enough, or deeper gives no more
        fewer = len(cuts)
    return result, cuts


def _walk(
    actors: tuple[Actor, ...],
    added: bool,
    store: str,
    pool: SessionPool | None,
    seed: int,
    stack: list[Frame],
    reduce: bool,
    scope: _Scope,
    result: SearchResult,
    system: System,
    clock: Clock,
    deadline: float | None,
    schedules: int | None,
    progress: Progress | None,
) -> bool:
    """Depth first from ``stack`` until nothing is left below ``scope.floor``; False
    when ``deadline`` or ``schedules`` came first."""
    while True:
        if deadline is not None and time.monotonic() > deadline:
            return False
        if schedules is not None and result.explored >= schedules:
            return False
        before = result.explored
        _one(actors, store, pool, seed, stack, reduce, scope, result, system, clock)
        if added and result.explored > before:
            result.faulted += 1
        if progress is not None:
            progress(result)
        if not _backtrack(stack, reduce, scope.floor):
            return True


Clock = tuple[tuple[timedelta | Aim, ...], int, bool]
"""The moves, how many per schedule, and whether only right after a window opens."""


def _starts(d: Drive) -> list[object]:
    """When each of the system's windows started (None: not started, or no start to read)."""
    return [None if w.since is None else w.since(d.engine.state) for w in d.system.windows]


def _window_open(d: Drive) -> bool:
    """Whether a clock move can matter here: one of the system's windows has started
    (or has no start to read). Before any has started a move shifts every later
    time alike, so exhaustive search makes none there."""
    return any(w.since is None or w.since(d.engine.state) is not None for w in d.system.windows)


def _one(
    actors: tuple[Actor, ...],
    store: str,
    pool: SessionPool | None,
    seed: int,
    stack: list[Frame],
    reduce: bool,
    scope: _Scope,
    result: SearchResult,
    system: System,
    clock: Clock = ((), 0, False),
) -> str:
    """Run one schedule: the stack's choices, then the first allowed actor at each new state.

    A schedule that is another shard's is left as soon as that is known (after its
    ``SPLIT_DEPTH + 1``-th step, or at its end when shorter): not counted, not kept;
    so is one that reaches the scope's cut (its node is kept instead)."""
    with Drive(
        actors, store, pool=pool, seed=seed, options=Options(stop_at_first=True), system=system
    ) as d:
        depth = 0
        moves, most, at_openings = clock
        moved = 0
        starts = _starts(d) if at_openings and moves else []
        opened = False
        while not d.over:
            if depth < len(stack):
                frame = stack[depth]
            else:
                enabled = d.enabled()
                if not enabled:
                    break
                if moved < most and (opened if at_openings else _window_open(d)):
                    enabled += [f"{MOVE}{i}" for i in range(len(moves))]
                sleep: dict[str, Access] = {}
                if reduce and stack:
                    parent = stack[-1]
                    assert parent.made is not None
                    sleep = {
                        a: x
                        for a, x in {**parent.sleep, **parent.done}.items()
                        if independent(x, parent.made)
                    }
                allowed = [a for a in enabled if a not in sleep]
                here = scope.mine([f.choice for f in stack]) if depth <= SPLIT_DEPTH else True
                if not allowed:
                    if here:
                        result.skipped += len(enabled)  # every way on is a reordering
                    return "skipped"
                if here:
                    result.skipped += sum(a in sleep for a in enabled)
                frame = Frame(enabled, sleep, allowed[0])
                stack.append(frame)
            if frame.choice.startswith(MOVE):
                d.take(moves[int(frame.choice[len(MOVE) :])])
                frame.made = Access(frame.choice, "", frozenset(), frozenset({EVERYTHING}), False)
                moved += 1
            else:
                run = d.engine.runs[frame.choice]
                made = run.pending or run.next_call
                entry = d.take(frame.choice)
                assert entry is not None
                frame.made = access(
                    frame.choice,
                    getattr(entry, "call", ""),
                    d.engine.next_call(frame.choice) is None,
                    system,
                    made,
                )
            depth += 1
            if starts:
                now = _starts(d)
                opened = any(a is not None and b is None for a, b in zip(now, starts, strict=True))
                starts = now
            if depth > scope.floor and scope.leaves(stack, depth, d.over):
                del stack[depth:]
                return "left"
        if depth <= SPLIT_DEPTH and not scope.mine([f.choice for f in stack[:depth]]):
            return "other shard"
        result.explored += 1
        result.moved += moved > 0
        _keep(result, d.driven())
    return "explored"


def _backtrack(stack: list[Frame], reduce: bool, floor: int = 0) -> bool:
    """Move the deepest frame (below ``floor``) with an untried actor to it; False
    when none is left."""
    while len(stack) > floor:
        frame = stack[-1]
        assert frame.made is not None
        frame.done[frame.choice] = frame.made
        for actor in frame.enabled:
            if actor in frame.done or (reduce and actor in frame.sleep):
                continue
            frame.choice, frame.made = actor, None
            return True
        stack.pop()
    return False
