"""The checker: a system's invariants and model agreement, fed the events in order.

The system's invariants keep their own record of who holds what, from the
results the runs themselves saw (never from the system's own columns). The
checker adds the one invariant racesim owns: when a variant follows the
system's sequential model, every call's result must equal the model's.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from racesim.model.history import NOT_COMPARED, Event
from racesim.model.plan import Actor
from racesim.model.violation import MODEL_AGREEMENT as MODEL_AGREEMENT
from racesim.model.violation import Violation as Violation
from racesim.model.violation import invariant_names as invariant_names

if TYPE_CHECKING:
    from racesim.system import Invariants, System


class _NoInvariants:
    def feed(self, event: Event) -> list[Violation]:
        return []

    def note(self) -> str:
        return ""


@dataclass
class Checker:
    """Feed events in order; collect violations and the invariants' note after each event."""

    invariants: Invariants = field(default_factory=_NoInvariants)
    compare_model: bool = False
    violations: list[Violation] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """What ``Invariants.note()`` said after each event (the timeline's ``holder:``)."""

    def __post_init__(self) -> None:
        self._note = note_of(self.invariants)

    def feed(self, event: Event) -> list[Violation]:
        found = self.invariants.feed(event)
        if self.compare_model:
            found += self._model(event)
        self.violations += found
        self.notes.append(self._note())
        return found

    @property
    def holders(self) -> list[str]:
        """Deprecated: the former name of ``notes`` (removed in the next release)."""
        warnings.warn(
            "Checker.holders is deprecated: use Checker.notes", DeprecationWarning, stacklevel=2
        )
        return self.notes

    def _model(self, event: Event) -> list[Violation]:
        if event.kind not in ("step", "done") or event.model is NOT_COMPARED:
            return []
        same = (
            event.error == event.model_error
            if event.error or event.model_error
            else (event.result == event.model)
        )
        if same:
            return []
        got = event.error or repr(event.result)
        want = event.model_error or repr(event.model)
        return [
            Violation(
                MODEL_AGREEMENT,
                event.seq,
                event.label,
                event.actor,
                (event.actor,),
                f"{event.call}: store gave {got}, model gives {want}",
                cause=event.call,
            )
        ]


class FirstBroken:
    """A violation the first time each invariant is seen broken.

    A system whose watch reads its invariants into each event's state says, in
    ``broken``, which are broken after that event and what a finding shows.
    """

    def __init__(self, actors: tuple[Actor, ...]) -> None:
        self.reported: set[str] = set()

    def broken(self, state: Any) -> Iterator[tuple[str, str]]:
        """(invariant name, what the finding shows) for each one broken in ``state``."""
        raise NotImplementedError

    def feed(self, event: Event) -> list[Violation]:
        found = []
        for name, detail in self.broken(event.state):
            if name in self.reported:
                continue
            self.reported.add(name)
            found.append(
                Violation(name, event.seq, event.label, event.actor, (event.actor,), detail)
            )
        return found

    def note(self) -> str:
        return ""


def note_of(invariants: Any) -> Callable[[], str]:
    """The invariants' ``note``; for invariants written before it was named so, their
    ``holder`` (with a DeprecationWarning: the alias goes in the next release)."""
    note = getattr(invariants, "note", None)
    if callable(note):
        return note  # type: ignore[no-any-return]
    holder = getattr(invariants, "holder", None)
    if not callable(holder):
        raise TypeError(f"{type(invariants).__name__} has no note() (see racesim.Invariants)")
    warnings.warn(
        f"{type(invariants).__name__}.holder() is deprecated: name it note()"
        " (the timeline shows it as before)",
        DeprecationWarning,
        stacklevel=3,
    )
    return holder  # type: ignore[no-any-return]


def check(
    events: Iterable[Event],
    compare_model: bool = False,
    *,
    system: System | None = None,
    actors: tuple[Actor, ...] = (),
) -> Checker:
    """Run every invariant of ``system`` (the reference system when None) over a whole
    history."""
    from racesim.system import DEFAULT_SYSTEM, resolve

    found = resolve(DEFAULT_SYSTEM if system is None else system)
    checker = Checker(found.invariants(actors), compare_model=compare_model)
    for event in events:
        checker.feed(event)
    return checker
