"""The checker: a system's invariants and model agreement, fed the events in order.

The system's invariants keep their own record of who holds what, from the
results the runs themselves saw (never from the system's own columns). The
checker adds the one invariant racesim owns: when a variant follows the
system's sequential model, every call's result must equal the model's.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
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

    def holder(self) -> str:
        return ""


@dataclass
class Checker:
    """Feed events in order; collect violations and the holder after each event."""

    invariants: Invariants = field(default_factory=_NoInvariants)
    compare_model: bool = False
    violations: list[Violation] = field(default_factory=list)
    holders: list[str] = field(default_factory=list)

    def feed(self, event: Event) -> list[Violation]:
        found = self.invariants.feed(event)
        if self.compare_model:
            found += self._model(event)
        self.violations += found
        self.holders.append(self.invariants.holder())
        return found

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

    def holder(self) -> str:
        return ""


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
