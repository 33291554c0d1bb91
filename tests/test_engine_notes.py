"""Invariants.note(): the short label of who holds what that the checker keeps after
each event (the timeline shows it); holder() is its deprecated former name."""

from __future__ import annotations

import pytest

from racesim.checks.invariants import Checker
from racesim.model.history import Event
from racesim.model.violation import Violation


class Leases:
    """Notes which runs hold a lease: a claim takes one, a release gives it back."""

    def __init__(self) -> None:
        self.held: list[str] = []

    def feed(self, event: Event) -> list[Violation]:
        if event.call == "claim":
            self.held.append(event.actor)
        elif event.call == "release":
            self.held.remove(event.actor)
        return []

    def note(self) -> str:
        return ", ".join(self.held)


class OldLeases(Leases):
    """The same, written before note() was named so."""

    note = None  # type: ignore[assignment]

    def holder(self) -> str:
        return ", ".join(self.held)


EVENTS = [
    Event(0, "step", "w1", "claim"),
    Event(1, "step", "w2", "claim"),
    Event(2, "step", "w1", "release"),
]


def test_the_note_after_each_event_is_kept() -> None:
    checker = Checker(Leases())
    for event in EVENTS:
        checker.feed(event)
    assert checker.notes == ["w1", "w1, w2", "w2"]


def test_invariants_with_only_holder_still_work_with_a_deprecation_warning() -> None:
    with pytest.warns(DeprecationWarning, match=r"OldLeases.holder\(\) is deprecated"):
        checker = Checker(OldLeases())
    for event in EVENTS:
        checker.feed(event)
    assert checker.notes == ["w1", "w1, w2", "w2"]


def test_checker_holders_is_the_deprecated_name_of_notes() -> None:
    checker = Checker(Leases())
    checker.feed(EVENTS[0])
    with pytest.warns(DeprecationWarning, match="use Checker.notes"):
        assert checker.holders == ["w1"]


def test_invariants_with_neither_are_refused_by_name() -> None:
    class Nothing:
        def feed(self, event: Event) -> list[Violation]:
            return []

    with pytest.raises(TypeError, match=r"Nothing has no note\(\)"):
        Checker(Nothing())  # type: ignore[arg-type]
