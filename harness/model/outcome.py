"""What a run leaves: its history and what the checks made of it (plain data)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from racesim.model.history import History
from racesim.model.violation import Violation


class Checks(Protocol):
    """The checks' results: violations found, and the invariants' note after each event."""

    @property
    def violations(self) -> list[Violation]: ...

    @property
    def notes(self) -> list[str]: ...


@dataclass
class Outcome:
    history: History
    checker: Checks
