"""How a spec run is shown: isolationtester's bytes, racesim's timeline, or JSON lines.

The timeline puts every step on one line with the time it happened, its session
and what became of it (sent, waiting and why, done with its outcome), so the
interleaving PostgreSQL actually produced can be read top to bottom::

    permutation 1: s1a s2a s1b s2b
        0.2ms  s1  s1a   LOCK TABLE a1;
        0.4ms  s1  s1a   -> ok
        1.6ms  s1  s1b   .. waiting (blocked on a lock held by s2)
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict
from typing import Any, TextIO

from racesim.spec.run import Event

__all__ = ["byte_writer", "event_json", "outcome_of", "timeline_line"]

_ERROR = re.compile(r"(ERROR|FATAL|PANIC):  ")
_ROWS = re.compile(r"\(\d+ rows?\)")
_NOTIFY = re.compile(r"[^:]+: NOTIFY ")


def byte_writer(stream: TextIO) -> Callable[[bytes], None]:
    """Write bytes to a text stream's buffer (exact bytes), or decoded where it has none."""
    buffer = getattr(stream, "buffer", None)

    def write(data: bytes) -> None:
        if buffer is not None:
            stream.flush()
            buffer.write(data)
            buffer.flush()
        else:
            stream.write(data.decode("utf-8", "surrogateescape"))

    return write


def outcome_of(text: str) -> str:
    """A completed step's outcome in a few words, from what isolationtester printed for it."""
    lines = text.splitlines()[1:]
    errors = [ln for ln in lines if _ERROR.match(ln)]
    rows = [ln for ln in lines if _ROWS.fullmatch(ln)]
    notifies = [ln.split(": ", 1)[1] for ln in lines if _NOTIFY.match(ln)]
    return "; ".join(errors + rows + notifies) or "ok"


def _first_line(sql: str, width: int = 64) -> str:
    lines = [ln.strip() for ln in sql.splitlines() if ln.strip()]
    text = lines[0] if lines else ""
    more = len(lines) > 1 or len(text) > width
    return (text[:width] + " ...") if more else text


def timeline_line(event: Event, widths: tuple[int, int]) -> str | None:
    """One timeline line for ``event`` (None for events the timeline leaves out)."""
    if event.kind == "permutation":
        return f"\npermutation {event.permutation + 1}: {event.text}"
    if event.kind == "error":
        return f"   !! {event.text}"
    stamp = f"{event.t * 1000:9.1f}ms"
    who = f"{event.session:<{widths[0]}}  {event.step:<{widths[1]}}"
    if event.kind == "send":
        return f"{stamp}  {who}  {_first_line(event.sql)}"
    if event.kind == "wait":
        why = {
            "lock": "blocked on a lock",
            "marker": "finished, held back by its marker",
            "(*)": "marked (*): shown as waiting",
        }
        held = f" held by {', '.join(event.blockers)}" if event.blockers else ""
        return f"{stamp}  {who}  .. waiting ({why.get(event.text, event.text)}{held})"
    if event.kind == "done":
        return f"{stamp}  {who}  -> {outcome_of(event.text)}"
    if event.kind == "notice":
        return f"{stamp}  {who}     {event.text}"
    return None


def event_json(event: Event) -> dict[str, Any]:
    record: dict[str, Any] = {"type": "spec-event", **asdict(event)}
    record["t"] = round(event.t, 6)
    if event.kind == "done":
        record["outcome"] = outcome_of(event.text)
    return record
