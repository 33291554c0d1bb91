"""Everything racesim prints goes through here: timelines, JSON lines, summaries."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import Any, TextIO

from racesim.model.history import Event
from racesim.model.outcome import Outcome
from racesim.model.show import Show
from racesim.model.verdict import Verdict
from racesim.model.violation import Violation

_HIDDEN = [*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029, *range(0x202A, 0x202F)]
_HIDDEN += [*range(0x2066, 0x206A)]
_ESCAPES = {c: f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}" for c in _HIDDEN}
_ESCAPES_KEEP_NL = {c: e for c, e in _ESCAPES.items() if c != 0x0A}


def visible(text: str, newlines: bool = False) -> str:
    """``text`` with control and bidirectional-override characters escaped (``\\x1b``),
    so nothing read from a file can move the cursor, recolour or hide output."""
    return text.translate(_ESCAPES_KEEP_NL if newlines else _ESCAPES)


def clock(t: datetime | None) -> str:
    return t.strftime("%H:%M:%S") if t else "-"


def show_result(event: Event, show: Show) -> str:
    """The call's result (or error) as the system writes it."""
    if event.kind == "wait":
        return "waiting (blocked in PostgreSQL)"
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


def event_json(event: Event, holder: str, found: list[Violation], show: Show) -> dict[str, Any]:
    return {
        "type": "event",
        "seq": event.seq,
        "kind": event.kind,
        "label": event.label,
        "actor": event.actor,
        "call": event.call,
        "args": [str(a) for a in event.args],
        "result": show_result(event, show),
        "error": event.error,
        "sqlstate": event.sqlstate,
        "finished": event.finished,
        show.state_key: None if event.state is None else show.state_json(event.state),
        "holder": holder or None,
        "vtime": event.vtime.isoformat() if event.vtime else None,
        "wall_ms": round(event.wall * 1000, 3),
        "violations": [v.invariant for v in found],
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

    def run(self, title: str, path: str, outcome: Outcome, verdict: Verdict) -> None:
        """One run: its timeline (or JSON lines), violations marked, then its verdict."""
        history, holders = outcome.history, outcome.checker.holders
        show = history.show
        by_seq: dict[int, list[Violation]] = {}
        for v in outcome.checker.violations:
            by_seq.setdefault(v.seq, []).append(v)
        if self.as_json:
            for event, holder in zip(history.events, holders, strict=False):
                self.record(
                    {
                        "scenario": path,
                        "store": history.store,
                        **event_json(event, holder, by_seq.get(event.seq, []), show),
                    }
                )
            self.record(
                {
                    "type": "verdict",
                    "scenario": path,
                    "store": history.store,
                    "name": title,
                    "matches": verdict.matches,
                    "summary": verdict.summary,
                    "violations": [v.__dict__ for v in verdict.violations],
                    "stuck": history.stuck,
                }
            )
            return
        self.line(f"== {path} [{history.store}] {title}")
        for event, holder in zip(history.events, holders, strict=False):
            self.line(timeline_line(event, holder, show))
            for v in by_seq.get(event.seq, []):
                self.line(f"        !! {v.invariant}: {v.message}")
        tag = "skip" if verdict.skipped else "ok  " if verdict.matches else "FAIL"
        self.line(f"   {tag} {verdict.summary}")
        self.line()


HEAD_WIDTH = 60


def timeline_line(event: Event, holder: str, show: Show) -> str:
    """``T+3   a: write -> ok   | <watched state>  holder: a``, then how a run ended."""
    label = event.label or ""
    if event.kind == "clock":
        head = f"{event.call}  ({show_result(event, show)})"
    else:
        head = f"{event.actor}: {event.call} -> {show_result(event, show)}"
    if len(head) > HEAD_WIDTH:
        head = head[: HEAD_WIDTH - 1] + "…"
    tail = show_state(event.state, show)
    if tail:
        tail = f"| {tail}  holder: {holder or '-'}"
    text = f"  {label:<6}{head:<{HEAD_WIDTH}} {tail}".rstrip()
    if event.finished is not None:
        text += f"\n        {event.actor} finished: {event.finished}"
    return text
