"""How the reference system's values read in timelines, as the original issue writes them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from racesim.store.interface import Freshness, MarkResult
from racesim.store.invariants import Marker
from racesim.system import Show


def short(token: str | None) -> str:
    return token[:8] if token else ""


def clock(t: datetime | None) -> str:
    return t.strftime("%H:%M:%S") if t else "-"


def value(call: str, result: Any) -> str:
    if isinstance(result, MarkResult):
        if result.ok and result.token:
            return f"ok=true token={short(result.token)}"
        return "ok=true" if result.ok else "ok=false"
    if isinstance(result, Freshness):
        return f"started_at={clock(result.started_at)} collected_at={clock(result.collected_at)}"
    if isinstance(result, bool):
        return "true" if result else "false"
    if call == "receive":
        return f"payload token={short(result)}" if result else "nothing delivered"
    if result is None:
        return "done" if call in ("collect", "crash") else "ok"
    return str(result)


def error(text: str) -> str:
    if text.startswith("StoreInputError: "):
        return "refused: " + text.removeprefix("StoreInputError: ")
    return f"error: {text}"


def state(m: Any) -> str:
    if not isinstance(m, Marker):
        return ""
    if not m.is_set:
        return "marker: -"
    owner = f" owner {short(m.owner)}" if m.owner else ""
    return f"marker: set {clock(m.started_at)}{owner}"


def state_json(m: Any) -> Any:
    if not isinstance(m, Marker):
        return None
    return {
        "started_at": m.started_at.isoformat() if m.started_at else None,
        "owner": m.owner,
        "collected_at": m.collected_at.isoformat() if m.collected_at else None,
        "error": m.error,
    }


SHOW = Show(value=value, error=error, state=state, state_json=state_json, state_key="marker")
