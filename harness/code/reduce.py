"""What each statement step reads and writes, for the exhaustive search's reduction.

A statement is judged in its run's transaction (``racesim.footprints.Session``
follows the run's statements in order: a commit writes what its transaction
touched). Parsing is the cost, so a footprint is computed only when the search
asks for it, and kept by the run's statements so far: runs repeat their statements.
"""

from __future__ import annotations

from dataclasses import dataclass

from racesim.footprints import Schema
from racesim.footprints import Session as Following
from racesim.system import Call, Footprint

__all__ = ["Footprints", "StatementCall"]

KEPT = 10_000
"""Statement prefixes whose footprints are kept (all are forgotten past it)."""


@dataclass(frozen=True)
class StatementCall(Call):
    """A statement's step; ``trail`` is the run's statements up to and including it."""

    trail: tuple[str, ...] = ()


class Footprints:
    """``System.footprint_of`` of a code system."""

    def __init__(self, schema: Schema | None) -> None:
        self.schema = schema
        self._known: dict[tuple[str, ...], Footprint | None] = {}

    def of(self, call: Call) -> Footprint | None:
        """The step's footprint; None (everything) for a step that sends no statement."""
        if not isinstance(call, StatementCall) or not call.trail:
            return None
        return self.after(call.trail)

    def after(self, statements: tuple[str, ...]) -> Footprint | None:
        """The footprint of the last of ``statements``, run in that order on one session."""
        if statements in self._known:
            return self._known[statements]
        if len(self._known) > KEPT:
            self._known.clear()
        session = Following(self.schema)
        for i, sql in enumerate(statements, 1):
            self._known[statements[:i]] = session.next(sql)
        return self._known[statements]
