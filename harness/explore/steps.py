"""What the systematic searches share: what a step touched, when two steps are
independent, and what a search did.

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

Example::

    a = access("w1", "claim", False, system)
    b = access("w2", "find", False, system)
    independent(a, b)  # False: the claim writes what the find reads
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from racesim.engine.commit_steps import COMMIT, commit_footprint
from racesim.explore.drive import Driven
from racesim.model.plan import Actor
from racesim.system import Call, System

__all__ = [
    "EVERYTHING",
    "Access",
    "Progress",
    "SearchResult",
    "access",
    "independent",
    "keep_shortest",
    "with_faults",
]

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

    def plain(self) -> list[object]:
        """As plain values (lists, strings, booleans), to send to another process."""
        return [
            self.actor,
            self.call,
            sorted(self.reads),
            sorted(self.writes),
            self.finishes,
            self.seen,
        ]

    @classmethod
    def from_plain(cls, value: list[object]) -> Access:
        actor, call, reads, writes, finishes, seen = value
        assert isinstance(reads, list) and isinstance(writes, list)
        return cls(
            str(actor),
            str(call),
            frozenset(map(str, reads)),
            frozenset(map(str, writes)),
            bool(finishes),
            bool(seen),
        )


def access(
    actor: str, call: str, finishes: bool, system: System, made: Call | None = None
) -> Access:
    """The resources a step of ``call`` (``made``, when known) reads and writes, by the
    system's footprints, and whether the system's invariants can see it."""
    footprint = system.footprint(call, made)
    if footprint is None:  # a split statement's commit step: what its statement touched
        footprint = commit_footprint(system, call, made)
    if footprint is None:
        return Access(actor, call, frozenset(), frozenset({EVERYTHING}), finishes)
    reads = system.reads()
    statement = call.removesuffix(COMMIT)  # a commit step is seen where its statement is
    seen = reads is None or call in reads or statement in reads or bool(footprint.writes & reads)
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


Progress = Callable[[SearchResult], None]


def keep_shortest(result: SearchResult, driven: Driven) -> None:
    """Keep the shortest violating schedule per invariant and cause (ties: the first),
    for each distinct violation of its first violating step."""
    for v in driven.first:
        best = result.found.get(v.key)
        if best is None or driven.steps < best.steps:
            result.found[v.key] = driven


def with_faults(
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
