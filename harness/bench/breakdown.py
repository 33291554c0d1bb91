"""Where an exploration's time to its first finding goes, for ``racesim bench explore``.

:class:`Breakdown` times the calls that make up a search while it runs (a fresh
database, opening sessions, the reset between schedules, the steps' SQL, the
monitor's reads of the watched state, the virtual clock's writes, shrinking) by
wrapping those methods for its duration, then restoring them. Each call's time is
its own: a timed call made inside another is taken out of the outer one. Only
calls that began before a given moment (the first finding) are summed, so the
figures split the time to find, and the remainder is the search's own Python.

Example::

    with Breakdown() as timing:
        result = explore(opts, dbs, reporter)
    for line in timing.lines(result.first_found):
        print(line)
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from racesim.engine import clock, loop, pool
from racesim.explore import run as explore_run
from racesim.provision import databases

__all__ = ["PARTS", "Breakdown"]

PARTS: tuple[tuple[str, Any, str], ...] = (
    ("fresh database", databases.Databases, "create"),
    ("opening sessions", pool.SessionPool, "_open"),
    ("opening sessions", pool.SessionPool, "open"),
    ("reset between schedules", pool.SessionPool, "reset"),
    ("steps (the SQL under test)", loop.Engine, "_step"),
    ("monitor queries (watched state)", loop.Engine, "_watch"),
    ("virtual clock writes", clock.VirtualClock, "_write"),
    ("shrinking", explore_run, "shrink"),
)
"""(what, owner, attribute): the timed parts of a search (a part may have several)."""


class Breakdown:
    """Times :data:`PARTS` while the ``with`` block runs."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.calls: list[tuple[str, float, float]] = []
        """(part, start, own seconds) of every timed call."""
        self._stack: list[list[float]] = []
        self._saved: list[tuple[Any, str, Any]] = []
        self._thread = threading.current_thread()

    def __enter__(self) -> Breakdown:
        self.started = time.monotonic()
        for what, owner, attribute in PARTS:
            original = getattr(owner, attribute)
            self._saved.append((owner, attribute, original))
            setattr(owner, attribute, self._timed(what, original))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for owner, attribute, original in reversed(self._saved):
            setattr(owner, attribute, original)
        self._saved.clear()

    def _timed(self, what: str, original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            if threading.current_thread() is not self._thread:
                # a part of a call timed on the search's thread (sessions opened side by side)
                return original(*args, **kwargs)
            inner = [0.0]
            self._stack.append(inner)
            start = time.monotonic()
            try:
                return original(*args, **kwargs)
            finally:
                spent = time.monotonic() - start
                self._stack.pop()
                if self._stack:
                    self._stack[-1][0] += spent
                self.calls.append((what, start, spent - inner[0]))

        return timed

    def before(self, seconds: float) -> dict[str, float]:
        """Seconds per part of the calls begun within ``seconds`` of the start."""
        until = self.started + seconds
        sums = {what: 0.0 for what, _, _ in PARTS}
        for what, start, own in self.calls:
            if start < until:
                sums[what] += own
        return sums

    def total(self, what: str) -> float:
        """Seconds of every call of one part, whenever it began."""
        return sum(own for part, _, own in self.calls if part == what)

    def counts(self, seconds: float) -> dict[str, int]:
        """Calls per part begun within ``seconds`` of the start."""
        until = self.started + seconds
        counts = {what: 0 for what, _, _ in PARTS}
        for what, start, _ in self.calls:
            if start < until:
                counts[what] += 1
        return counts


def median_lines(found: list[float], parts: list[dict[str, float]], title: str) -> list[str]:
    """The medians over seeds of each part of the time to find, and the rest."""
    import statistics

    if not found:
        return [f"  {title}: nothing found, no breakdown"]
    lines = [f"  {title} (medians over {len(found)} seed(s)):"]
    total = statistics.median(found)
    accounted = 0.0
    for what in dict.fromkeys(what for what, _, _ in PARTS):
        value = statistics.median(p[what] for p in parts)
        accounted += value
        if value > 0:
            lines.append(f"    {what:<34} {value * 1000:7.1f} ms  {value / total:5.0%}")
    rest = max(0.0, total - accounted)
    lines.append(
        f"    {'the rest (search, Python, checks)':<34} {rest * 1000:7.1f} ms  {rest / total:5.0%}"
    )
    return lines
