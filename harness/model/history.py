"""The record of a run: plain, immutable events that the checks and reports read."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from racesim.model.show import Show


class _NotCompared:
    def __repr__(self) -> str:
        return "not compared"


NOT_COMPARED: Any = _NotCompared()
"""``Event.model`` when the call has no model counterpart (or no model runs beside)."""

EventKind = Literal["step", "wait", "done", "clock", "stuck", "outage"]


@dataclass(frozen=True)
class Event:
    """One thing that happened: a step, a step that waits, its completion, a clock move.

    ``result`` is what the call returned (``error`` when it raised instead);
    ``state`` is the system's watched state after the event, or ``None`` when it
    was read once for a group of completions (the last event of the group carries it).
    """

    seq: int
    kind: EventKind
    actor: str
    call: str
    label: str = ""
    line: int | None = None
    args: tuple[Any, ...] = ()
    result: Any = None
    error: str | None = None
    sqlstate: str | None = None
    state: Any = None
    vtime: datetime | None = None
    wall: float = 0.0
    finished: str | None = None
    """The program's answer, on the event where the run ended."""
    model: Any = NOT_COMPARED
    """The model store's result for the same call, when the run is checked against it."""
    model_error: str | None = None
    blocked_after: float = 0.0
    """For ``wait``: seconds from sending the statement to seeing it blocked."""
    blocked_by: tuple[str, ...] = ()
    """For ``wait``: the runs (or ``pid N``) whose sessions it waits on, as seen blocked."""
    sql: str = ""
    """The statements the step sent, when it sent any (one per line)."""
    sent: tuple[str, ...] = ()
    """The same statements one by one, each with its parameters written in as literals
    (``BEGIN`` and ``COMMIT`` included where the store opened a transaction block)."""
    session_ended: bool = False
    """The call ended its run's session (a ``crash`` call)."""


@dataclass
class History:
    """Events in the order they happened, and what the run was about."""

    scenario: str
    store: str
    show: Show = field(default_factory=lambda: _default_show())
    """How the system's values are written (the reports read it)."""
    events: list[Event] = field(default_factory=list)
    stuck: str | None = None
    """Why the schedule could never finish, when it could not."""
    opened: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Per run, the statements its session sent as it opened (settings, the store's own
    setup), before its first step."""

    def add(self, event: Event) -> Event:
        self.events.append(event)
        return event


def _default_show() -> Show:
    from racesim.model.show import Show

    return Show()
