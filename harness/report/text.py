"""Everything racesim prints goes through here: timelines, JSON lines, summaries.

Values are written through the system's ``Show`` by :mod:`racesim.report.values`
(the view model calls them); timelines and JSON lines are renderings of
a run's view (:mod:`racesim.report.view`).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, TextIO

from racesim.report.values import clock as clock
from racesim.report.values import show_result as show_result
from racesim.report.values import show_state as show_state

if TYPE_CHECKING:
    from racesim.model.outcome import Outcome
    from racesim.model.verdict import Verdict
    from racesim.report.view import EventView, RunView

_HIDDEN = [*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029, *range(0x202A, 0x202F)]
_HIDDEN += [*range(0x2066, 0x206A)]
_ESCAPES = {c: f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}" for c in _HIDDEN}
_ESCAPES_KEEP_NL = {c: e for c, e in _ESCAPES.items() if c != 0x0A}


def visible(text: str, newlines: bool = False) -> str:
    """``text`` with control and bidirectional-override characters escaped (``\\x1b``),
    so nothing read from a file can move the cursor, recolour or hide output."""
    return text.translate(_ESCAPES_KEEP_NL if newlines else _ESCAPES)


def byte_writer(stream: TextIO) -> Callable[[bytes], None]:
    """Write bytes to a text stream's buffer (exact bytes, as isolationtester prints
    them), or decoded where it has none."""
    buffer = getattr(stream, "buffer", None)

    def write(data: bytes) -> None:
        if buffer is not None:
            stream.flush()
            buffer.write(data)
            buffer.flush()
        else:
            stream.write(data.decode("utf-8", "surrogateescape"))

    return write


def event_json(event: EventView, state_key: str) -> dict[str, Any]:
    """One event as a JSON line's fields (the watched state under ``state_key``)."""
    return {
        "type": "event",
        "seq": event.seq,
        "kind": event.kind,
        "label": event.label,
        "actor": event.actor,
        "call": event.call,
        "args": list(event.args),
        "sql": event.sql or None,
        "result": event.result,
        "error": event.error,
        "sqlstate": event.sqlstate,
        "finished": event.finished,
        state_key: None if event.state is None else event.state.data,
        "holder": event.holder or None,
        "vtime": event.vtime,
        "wall_ms": event.wall_ms,
        "violations": [v.invariant for v in event.violations],
    }


class Reporter:
    """Prints to one stream, as text for people or as JSON lines for programs."""

    def __init__(
        self, out: TextIO | None = None, as_json: bool = False, err: TextIO | None = None
    ) -> None:
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.as_json = as_json
        self._shown = 0

    def problem(self, text: str) -> None:
        """A line for the person at the terminal, on standard error, never as JSON."""
        print(visible(text), file=self.err, flush=True)

    def line(self, text: str = "") -> None:
        if not self.as_json:
            print(visible(text, newlines=True), file=self.out, flush=True)

    def progress(self, text: str) -> None:
        """A progress line, rewritten in place; only on a terminal, never into a pipe or file."""
        if self.as_json or not self.out.isatty():
            return
        print("\r" + text[:120].ljust(self._shown), end="", file=self.out, flush=True)
        self._shown = min(len(text), 120)

    def end_progress(self) -> None:
        """Clear the progress line (on a terminal) before other output."""
        if self._shown:
            print("\r" + " " * self._shown + "\r", end="", file=self.out, flush=True)
            self._shown = 0

    def record(self, obj: dict[str, Any]) -> None:
        print(json.dumps(obj, default=str), file=self.out, flush=True)

    def run(self, title: str, path: str, outcome: Outcome, verdict: Verdict) -> RunView:
        """One run: its timeline (or JSON lines), violations marked, then its verdict.

        Returns the run's view, for other renderings of the same run (``--html``).
        """
        from racesim.report.view import build

        view = build(title, path, outcome, verdict)
        self.view(view)
        return view

    def view(self, view: RunView) -> None:
        """A run's view as a timeline, or as JSON lines."""
        if self.as_json:
            for event in view.events:
                self.record(
                    {
                        "scenario": view.path,
                        "store": view.store,
                        **event_json(event, view.state_key),
                    }
                )
            self.record(
                {
                    "type": "verdict",
                    "scenario": view.path,
                    "store": view.store,
                    "name": view.title,
                    "matches": view.verdict.matches,
                    "summary": view.verdict.summary,
                    "violations": [asdict(v) for v in view.verdict.violations],
                    "stuck": view.verdict.stuck,
                }
            )
            return
        self.line(f"== {visible(view.path)} [{view.store}] {visible(view.title)}")
        width = max([LABEL_WIDTH - 1, *(len(e.label or "") for e in view.events)]) + 1
        holders = any(e.holder for e in view.events)
        for event in view.events:
            self.line(timeline_line(event, width, holders))
            for v in event.violations:
                self.line(f"        !! {v.invariant}: {v.message}")
        self.line(f"   {view.verdict.tag:<4} {view.verdict.summary}")
        self.line()


HEAD_WIDTH = 60
LABEL_WIDTH = 6
"""Columns of the label (``T+3``), or one more than the view's longest label."""


def timeline_line(event: EventView, width: int = LABEL_WIDTH, holders: bool = True) -> str:
    """``T+3   a: write -> ok   | <watched state>  holder: a``, then how a run ended.
    The holder is left out when no event of the run has one (``holders``)."""
    label = event.label or ""
    if event.kind == "clock":
        head = f"{event.call}  ({event.result})"
    else:
        head = f"{event.actor}: {event.call} -> {event.result}"
    if len(head) > HEAD_WIDTH:
        head = head[: HEAD_WIDTH - 1] + "…"
    tail = event.state.text if event.state is not None else ""
    if tail:
        tail = f"| {tail}" + (f"  holder: {event.holder or '-'}" if holders else "")
    text = f"  {label:<{width}}{head:<{HEAD_WIDTH}} {tail}".rstrip()
    if event.statement:
        text += f"\n  {'':<{width}}  {event.statement}"
    if event.finished is not None:
        text += f"\n  {'':<{width}}{event.actor} finished: {event.finished}"
    return text
