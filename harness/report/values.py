"""A run's values written as the system shows them: results, watched state, clock
times (for the view model, :mod:`racesim.report.view`, and the renderers)."""

from __future__ import annotations

from datetime import datetime

from racesim.model.history import Event
from racesim.model.show import Show


def clock(t: datetime | None) -> str:
    return t.strftime("%H:%M:%S") if t else "-"


def show_result(event: Event, show: Show) -> str:
    """The call's result (or error) as the system writes it."""
    if event.kind == "wait":  # a result on a wait says why it waits (a spec's marker)
        return f"waiting ({event.result or 'blocked in PostgreSQL'})"
    if event.kind == "clock":
        return f"clock now {clock(event.vtime)}"
    if event.kind == "stuck":
        return "stuck: can never finish"
    text = (
        show.error(event.error) if event.error is not None else show.value(event.call, event.result)
    )
    if event.kind == "done":
        text += " (after waiting)"
    return text


def show_state(state: object, show: Show) -> str:
    """The watched state after an event ("" when it was not read after this one)."""
    return "" if state is None else show.state(state)
