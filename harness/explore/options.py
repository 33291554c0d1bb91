"""What ``racesim explore`` takes (:class:`ExploreOptions`) and what it returns
(:class:`Explored`); :mod:`racesim.explore.run` runs it.

Example::

    opts = ExploreOptions(store="legacy", strategy="exhaustive", config="cron+user")
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from racesim.explore.drive import Driven
from racesim.explore.profiles import CACHE
from racesim.system import System

__all__ = ["DEFAULT_OUT", "ExploreOptions", "Explored"]

DEFAULT_OUT = CACHE / "counterexamples"


@dataclass(frozen=True)
class ExploreOptions:
    """Everything ``racesim explore`` takes; defaults are the command's defaults."""

    store: str
    seed: int = 0
    budget: float | None = None
    max_examples: int | None = None
    strategy: str = "portfolio"
    out: Path = DEFAULT_OUT
    profile: str | None = None
    shard: tuple[int, int] = (1, 1)
    config: str | None = None
    example_db: bool | str = True
    """Keep Hypothesis's example database under the cache folder (``hypothesis`` only),
    or share one through Redis when a ``redis://HOST:PORT/N`` URL
    (:mod:`racesim.explore.shared`)."""
    system: System | str | None = None
    """The system explored, or its name (the reference system when None)."""
    html: bool = False
    """Write each counterexample's run as an HTML page next to its scenario file."""
    clock_moves: int | None = None
    """(``exhaustive``) Try up to this many clock moves per schedule from all of the
    system's, and each fault a run may have added; 0 searches the interleavings
    alone; None (the default) one move per schedule, to each time window's exact
    boundary, and each fault (:func:`racesim.explore.search.clock_choices`)."""
    split: int = 0
    """(``exhaustive``) Only walk the tree down to the first depth with at least this
    many nodes, run the schedules that end above it and return the nodes as
    ``Explored.subtrees`` (0: search it all)."""
    subtree: Mapping[str, Any] | None = None
    """(``exhaustive``) Search only below this node (a ``Subtree.plain()``)."""


@dataclass
class Explored:
    """What an exploration found: one saved counterexample per invariant."""

    schedules: int = 0
    complete: bool = False
    skipped: int = 0
    seconds: float = 0.0
    found: dict[str, Driven] = field(default_factory=dict)
    """The smallest counterexample per ``invariant/cause`` key (``Violation.key``)."""
    files: dict[str, Path] = field(default_factory=dict)
    summary: str = ""
    flaky: dict[str, str] = field(default_factory=dict)
    """Invariants seen broken whose saved schedule did not break them again when
    replayed: both outcomes, as one line each. Never counted in ``found``."""
    over_budget: float | None = None
    """With a budget and something found: seconds shrinking went on past the budget."""
    first_found: float | None = None
    """Seconds from the start to the first violation seen (before any shrinking)."""
    started: float = field(default_factory=time.monotonic)
    detail: str = ""
    """What the summary adds: each portfolio member's work, or how many schedules of
    exhaustive and PCT made a clock move or had a fault added."""
    subtrees: list[dict[str, Any]] = field(default_factory=list)
    """With ``split``: the nodes below which the rest of the search lies (plain values)."""
