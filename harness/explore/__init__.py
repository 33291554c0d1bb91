"""Exploring schedules: racesim looks for an interleaving that breaks an invariant.

``explore(ExploreOptions(...), databases, reporter)`` is ``racesim explore`` in
Python; it returns what it found as ``Explored``. ``schedules`` is the Hypothesis
strategy exploration draws from, and ``drive`` runs one drawn ``Schedule``, for a
property test of your own::

    from hypothesis import given
    from racesim.explore import drive, schedules

    @given(schedules(SYSTEM, SYSTEM.config("two", "hypothesis")))
    def test_holds(s):
        assert not drive(s.actors, list(s.choices), "memory", system=SYSTEM).violations

The modules behind these names (``run``, ``search``, ``drive``, ``strategies``,
``shrink``, ...) are machinery. Each name loads its module on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from racesim.explore.drive import Driven, drive
    from racesim.explore.run import Explored, ExploreOptions, explore
    from racesim.explore.strategies import Schedule, schedules

_HOMES = {
    "Driven": "racesim.explore.drive",
    "drive": "racesim.explore.drive",
    "ExploreOptions": "racesim.explore.run",
    "Explored": "racesim.explore.run",
    "explore": "racesim.explore.run",
    "Schedule": "racesim.explore.strategies",
    "schedules": "racesim.explore.strategies",
}

__all__ = ["Driven", "ExploreOptions", "Explored", "Schedule", "drive", "explore", "schedules"]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'racesim.explore' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
