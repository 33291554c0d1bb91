"""How a system's values are written: the display hook reports call (plain data)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


def _plain(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "ok" if value is None else str(value)


@dataclass(frozen=True)
class Show:
    """How a system's values are written in timelines and JSON lines."""

    value: Callable[[str, Any], str] = lambda call, value: _plain(value)
    """A call's result, given the call's name."""
    error: Callable[[str], str] = lambda text: f"error: {text}"
    """An error, given ``ClassName: message``."""
    state: Callable[[Any], str] = lambda state: "" if state is None else f"state: {state}"
    """The watched state in the timeline's right-hand column ("" hides the column)."""
    state_json: Callable[[Any], Any] = lambda state: None if state is None else str(state)
    """The watched state as a JSON value."""
    state_key: str = "state"
    """The JSON lines key the watched state goes under."""
    statement: Callable[[str, tuple[Any, ...], str], str] | None = None
    """For systems whose steps are statements: the line the timeline writes under a
    step, given its call, arguments and SQL (e.g. the SQL and the source line)."""
