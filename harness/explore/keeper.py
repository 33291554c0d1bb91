"""Keeping what an exploration finds: the smallest counterexample per invariant and
cause, saved as a scenario file the moment it is found, and the few smallest
distinct ones to shrink further.

Example::

    keeper = Keeper(opts, result, system)
    keeper.offer(driven)  # saved under opts.out when it is the smallest so far
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from racesim.explore.drive import Driven
from racesim.explore.shrink import size
from racesim.formats.names import file_part
from racesim.formats.writer import save, scenario_text
from racesim.model.violation import Violation
from racesim.system import System, spec_of

if TYPE_CHECKING:
    from racesim.explore.options import Explored, ExploreOptions

__all__ = ["SHRINK_ALLOWANCE", "Keeper", "ViolationFound", "shrink_deadline", "violation_error"]

SHRINK_ALLOWANCE = 0.25
"""With ``--budget``, shrinking what was found may go on for at most this share of
the budget beyond it (the best counterexample so far is kept when it stops)."""


def shrink_deadline(opts: ExploreOptions, started: float) -> float | None:
    """When shrinking must stop (a ``time.monotonic()`` value); None without a budget."""
    if opts.budget is None:
        return None
    return started + opts.budget * (1 + SHRINK_ALLOWANCE)


class ViolationFound(AssertionError):
    """A schedule broke an invariant; one subclass per invariant and cause, so that
    Hypothesis shrinks and reports each as a distinct bug."""


_ERRORS: dict[str, type[ViolationFound]] = {}


def violation_error(key: str) -> type[ViolationFound]:
    """The exception class for violations with this key (made once per key)."""
    if key not in _ERRORS:
        name = "".join(c if c.isalnum() else "_" for c in key)
        _ERRORS[key] = type(f"Violation_{name}", (ViolationFound,), {})
    return _ERRORS[key]


class Keeper:
    """Keeps the smallest counterexample per invariant and saves it at once."""

    def __init__(self, opts: ExploreOptions, result: Explored, system: System) -> None:
        self.opts = opts
        self.result = result
        self.system = system
        self.seen: dict[str, list[Driven]] = {}
        """The few smallest distinct counterexamples per invariant, to shrink further."""

    def offer_all(self, found: Mapping[str, Driven]) -> None:
        """Keep each of a search's findings, in the order of their keys."""
        for key in sorted(found):
            self.offer(found[key])

    def offer(self, driven: Driven, key: str | None = None) -> None:
        """Keep ``driven`` for each distinct violation of its first violating step
        (only for ``key``, when given)."""
        if not driven.violations:
            return
        if self.result.first_found is None:
            self.result.first_found = time.monotonic() - self.result.started
        for v in driven.first:
            if key is None or v.key == key:
                self._offer(driven, v)

    def _offer(self, driven: Driven, v: Violation) -> None:
        seen = self.seen.setdefault(v.key, [])
        if all(size(d) != size(driven) for d in seen):
            seen.append(driven)
            seen.sort(key=size)
            del seen[3:]
        best = self.result.found.get(v.key)
        if best is not None and size(best) <= size(driven):
            return
        self.result.found[v.key] = driven
        self.result.files[v.key] = save(self.text(driven, v), self.path(v.slug))

    def path(self, slug: str) -> Path:
        o = self.opts
        shard = f"-shard{o.shard[0]}of{o.shard[1]}" if o.shard[1] > 1 else ""
        config = f"-{file_part(o.config)}" if o.config else ""
        name = f"{file_part(o.store)}-{file_part(slug)}-{o.strategy}{config}-seed{o.seed}{shard}"
        return o.out / f"{name}.toml"

    def text(self, driven: Driven, v: Violation) -> str:
        o = self.opts
        plan, record = driven.plan, self.system.saved_actors
        if record is not None:
            plan = replace(plan, actors=record(plan.actors, tuple(driven.outcome.history.events)))
        return scenario_text(
            plan,
            o.store,
            v.invariant,
            v.label,
            name=f"{v.invariant} on {o.store}: {v.message}",
            description=f"Found by racesim explore --store {o.store} --strategy {o.strategy}"
            + (f" --config {o.config}" if o.config else "")
            + f" --seed {o.seed}; shrunk to {driven.steps} steps.",
            system=spec_of(self.system),
        )
