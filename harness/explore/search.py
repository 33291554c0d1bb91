"""Systematic schedule search: every distinct interleaving, or seeded PCT sampling.

**Exhaustive** (``exhaustive``) is stateless model checking: each schedule is
one fresh engine run (on a reset pooled database), chosen depth first; after a
run, the deepest step with an untried actor is changed and the run repeated.

The reduction is a *sleep set* (Godefroid): after the subtree where actor ``a``
steps first from some state has been explored, ``a``'s step is put to sleep in
the sibling subtrees and stays asleep while only steps independent of it are
taken; a run whose every enabled actor sleeps is skipped, since each of its
completions is a reordering of independent steps of a schedule already run.
Two steps (of different actors) are **independent** when

* neither writes a resource the other reads or writes, by the system's call
  footprints (a call without a footprint touches everything);
* neither ends its program (the checks read which runs have finished);
* and the invariants can see neither: a step is seen when its call is one whose
  events the invariants follow, or it writes a resource they read, by the
  system's ``invariant_reads`` (when a system does not say, its invariants read
  everything and no step is reordered).

Swapping two such steps changes no call's result (so the model agreement check
sees the same results), nothing the invariants read and none of their record,
hence no verdict. The reduction is only as sound as these declarations: a
footprint that leaves out something a call touches, or an ``invariant_reads``
that leaves out what an invariant looks at, makes the search skip schedules
that differ. Virtual time is the one thing a swap
shifts: steps are labelled a second apart, so a timestamp a step writes moves by
seconds; as long as the system's time windows are much longer than a schedule
(minutes, for the reference system) no result changes.

**Clock moves and faults** (``moves``, ``faults``): given the system's clock moves,
exhaustive search also tries, at every state where an actor can step, each clock
move as one more choice, at most ``most_moves`` of them per schedule; a move
conflicts with every step (no step is reordered across it); moves are tried only
once one of the system's windows has started (before that, a move shifts every
later time alike). Given the faults the
configuration's runs may have, it then searches again with each one of them added
(at most one added fault per schedule). PCT makes one clock move in half of its
schedules and adds one of those faults in half of them.

**PCT** (``pct``): each schedule gives the actors random distinct priorities and
picks ``depth - 1`` change points uniformly over the steps of the run (its real
length, estimated from the earlier schedules' runs); the highest-priority enabled
actor always steps, and after a change point's step the running actor drops to a
low priority. Seeded: schedule ``i`` of seed ``s`` is the same everywhere.

``--shard K/N`` splits exhaustive work by the first four choices of a schedule
(a shorter schedule, by all of its choices): every shard walks the same tree as
one process down to that depth, with the same sleep sets (it runs the fourth
step of another shard's branch to learn what that step touches, then leaves the
branch), and explores only the branches that are its own. So the N shards
explore disjoint sets of schedules that together are exactly the schedules one
process explores.
"""

from __future__ import annotations

import random
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta

from racesim.engine.loop import Options
from racesim.engine.pool import SessionPool
from racesim.explore.drive import Aim, Drive, Driven, clock_moves
from racesim.model.plan import Actor
from racesim.system import Call, System

__all__ = [
    "EVERYTHING",
    "Access",
    "SearchResult",
    "access",
    "change_points",
    "exhaustive",
    "independent",
    "pct",
]

SPLIT_DEPTH = 3
"""Shards split the search by a schedule's first ``SPLIT_DEPTH + 1`` choices."""
MAX_STEPS = 10_000
"""PCT stops a run after this many steps (only a program that never ends gets there)."""
EVERYTHING = "*"
"""The resource a call without a footprint touches: it conflicts with every step."""


@dataclass(frozen=True)
class Access:
    """What one executed step touched."""

    actor: str
    call: str
    reads: frozenset[str]
    writes: frozenset[str]
    finishes: bool
    seen: bool = True
    """The invariants can see the step (they follow its call or read what it writes)."""


def access(
    actor: str, call: str, finishes: bool, system: System, made: Call | None = None
) -> Access:
    """The resources a step of ``call`` (``made``, when known) reads and writes, by the
    system's footprints, and whether the system's invariants can see it."""
    found = system
    footprint = found.footprint(call, made)
    if footprint is None:
        return Access(actor, call, frozenset(), frozenset({EVERYTHING}), finishes)
    reads = found.reads()
    seen = reads is None or call in reads or bool(footprint.writes & reads)
    return Access(actor, call, footprint.reads, footprint.writes, finishes, seen)


def independent(a: Access, b: Access) -> bool:
    """True when swapping the two steps can change no result, watched state or verdict."""
    if a.actor == b.actor or a.finishes or b.finishes or a.seen or b.seen:
        return False
    if EVERYTHING in a.writes or EVERYTHING in b.writes:
        return False
    return not (a.writes & (b.reads | b.writes) or b.writes & a.reads)


@dataclass
class SearchResult:
    """What a search did: schedules run, branches skipped, violations found.

    ``skipped`` counts branches (a state and an actor stepping from it) that the
    sleep sets pruned; each stands for one or more schedules not run.
    """

    explored: int = 0
    skipped: int = 0
    complete: bool = False
    found: dict[str, Driven] = field(default_factory=dict)
    seconds: float = 0.0
    moved: int = 0
    """Schedules that made a clock move."""
    faulted: int = 0
    """Schedules run with a fault the configuration's runs may have added."""

    def extras(self) -> str:
        """The clock moves and added faults, for a summary."""
        return f"{self.moved} schedule(s) with a clock move, {self.faulted} with an added fault"


@dataclass
class _Frame:
    enabled: list[str]
    sleep: dict[str, Access]
    choice: str
    done: dict[str, Access] = field(default_factory=dict)
    made: Access | None = None


Runner = Callable[[], Drive]
Progress = Callable[[SearchResult], None]


def _keep(result: SearchResult, driven: Driven) -> None:
    """Keep the shortest violating schedule per invariant and cause (ties: the first),
    for each distinct violation of its first violating step."""
    for v in driven.first:
        best = result.found.get(v.key)
        if best is None or driven.steps < best.steps:
            result.found[v.key] = driven


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
) -> SearchResult:
    """Run every distinct schedule of ``actors`` (or shard ``K/N`` of them), then of
    ``actors`` with each one of ``faults`` (actor -> faults it may have) added; each
    schedule may make up to ``most_moves`` of ``moves`` at any state.

    ``complete`` is False when ``deadline`` (a ``time.monotonic()`` value) came
    first, or ``schedules`` were run before the search ended. Each schedule stops at its first violation.
    """
    k, n = shard

    def mine(choices: list[str]) -> bool:
        """Whether the schedule starting with ``choices`` (its first ``SPLIT_DEPTH + 1``,
        or all of a shorter one) is this shard's."""
        if n == 1:
            return True
        return zlib.crc32(" ".join(choices[: SPLIT_DEPTH + 1]).encode()) % n == k - 1

    found = system
    result = SearchResult()
    started = time.monotonic()
    clock = (moves, most_moves if moves else 0)
    for variant, added in _with_faults(actors, faults or {}):
        stack: list[_Frame] = []
        complete = False
        while True:
            if deadline is not None and time.monotonic() > deadline:
                break
            if schedules is not None and result.explored >= schedules:
                break
            before = result.explored
            _one(variant, store, pool, seed, stack, reduce, mine, result, found, clock)
            if added and result.explored > before:
                result.faulted += 1
            if progress is not None:
                progress(result)
            if not _backtrack(stack, reduce):
                complete = True
                break
        if not complete:
            break
    else:
        result.complete = True
    result.seconds = time.monotonic() - started
    return result


def _with_faults(
    actors: tuple[Actor, ...], faults: Mapping[str, tuple[str, ...]]
) -> list[tuple[tuple[Actor, ...], bool]]:
    """The actors as they are, then with each fault one of them may have added (one
    at a time, in declaration order); True marks an added fault."""
    out = [(actors, False)]
    for i, a in enumerate(actors):
        for fault in faults.get(a.name, ()):
            if fault not in a.faults:
                changed = replace(a, faults=a.faults | {fault})
                out.append(((*actors[:i], changed, *actors[i + 1 :]), True))
    return out


def _window_open(d: Drive) -> bool:
    """Whether a clock move can matter here: one of the system's windows has started
    (or has no start to read). Before any has started a move shifts every later
    time alike, so exhaustive search makes none there."""
    return any(w.since is None or w.since(d.engine.state) is not None for w in d.system.windows)


MOVE = "\0clock "
"""The prefix of a clock move's choice in the exhaustive tree (no actor's name)."""


def _one(
    actors: tuple[Actor, ...],
    store: str,
    pool: SessionPool | None,
    seed: int,
    stack: list[_Frame],
    reduce: bool,
    mine: Callable[[list[str]], bool],
    result: SearchResult,
    system: System,
    clock: tuple[tuple[timedelta | Aim, ...], int] = ((), 0),
) -> str:
    """Run one schedule: the stack's choices, then the first allowed actor at each new state.

    A schedule that is another shard's is left as soon as that is known (after its
    ``SPLIT_DEPTH + 1``-th step, or at its end when shorter): not counted, not kept."""
    with Drive(
        actors, store, pool=pool, seed=seed, options=Options(stop_at_first=True), system=system
    ) as d:
        depth = 0
        moves, most = clock
        moved = 0
        while not d.over:
            if depth < len(stack):
                frame = stack[depth]
            else:
                enabled = d.enabled()
                if not enabled:
                    break
                if moved < most and _window_open(d):
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
                here = mine([f.choice for f in stack]) if depth <= SPLIT_DEPTH else True
                if not allowed:
                    if here:
                        result.skipped += len(enabled)  # every way on is a reordering
                    return "skipped"
                if here:
                    result.skipped += sum(a in sleep for a in enabled)
                frame = _Frame(enabled, sleep, allowed[0])
                stack.append(frame)
            if frame.choice.startswith(MOVE):
                d.take(moves[int(frame.choice[len(MOVE) :])])
                frame.made = Access(frame.choice, "", frozenset(), frozenset({EVERYTHING}), False)
                moved += 1
                depth += 1
                if depth == SPLIT_DEPTH + 1 and not mine([f.choice for f in stack[:depth]]):
                    del stack[depth:]
                    return "other shard"
                continue
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
            if depth == SPLIT_DEPTH + 1 and not mine([f.choice for f in stack[:depth]]):
                del stack[depth:]
                return "other shard"
        if depth <= SPLIT_DEPTH and not mine([f.choice for f in stack[:depth]]):
            return "other shard"
        result.explored += 1
        result.moved += moved > 0
        _keep(result, d.driven())
    return "explored"


def _backtrack(stack: list[_Frame], reduce: bool) -> bool:
    """Move the deepest frame with an untried actor to it; False when none is left."""
    while stack:
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
    variants = _with_faults(actors, faults or {})
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
            _keep(result, d.driven())
        if progress is not None:
            progress(result)
    result.seconds = time.monotonic() - started
    return result
