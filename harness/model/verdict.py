"""Judging a run against what its scenario expected."""

from __future__ import annotations

from dataclasses import dataclass

from racesim.model.outcome import Outcome
from racesim.model.violation import Violation


@dataclass(frozen=True)
class Expectation:
    """``holds``, or the invariant expected to break and the step label where."""

    breaks: str = ""
    at: str = ""

    def describe(self) -> str:
        return "holds" if not self.breaks else f"breaks {self.breaks} at {self.at}"


@dataclass(frozen=True)
class Verdict:
    matches: bool
    summary: str
    violations: tuple[Violation, ...]
    skipped: bool = False


def judge(outcome: Outcome, expected: Expectation | None) -> Verdict:
    """Does the run match its expectation? An expected break that happens is a match."""
    found = tuple(outcome.checker.violations)
    stuck = outcome.history.stuck
    if stuck:
        return Verdict(False, f"stuck: {stuck}", found)
    first = found[0] if found else None
    if first is None:
        seen = "holds"
    else:
        where = f" at {first.label}" if first.label else f" at step {first.seq}"
        seen = f"breaks {first.invariant}{where}"
    if expected is None:
        return Verdict(not found, seen, found)
    if not expected.breaks:
        return Verdict(not found, seen if not found else f"{seen}, expected it to hold", found)
    hit = any(v.invariant == expected.breaks and v.label == expected.at for v in found)
    early = first is not None and first.seq < min(
        (v.seq for v in found if v.label == expected.at), default=first.seq + 1
    )
    if hit and not early:
        return Verdict(True, f"breaks {expected.breaks} at {expected.at}, as expected", found)
    return Verdict(False, f"{seen}, expected {expected.describe()}", found)
