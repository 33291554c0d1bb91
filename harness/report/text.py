"""Everything racesim prints goes through here: timelines, JSON lines, summaries."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import Any, TextIO

from racesim.engine.loop import Outcome
from racesim.model.history import Event, Marker
from racesim.model.verdict import Verdict
from racesim.model.violation import Violation
from racesim.store import Freshness, MarkResult


def short(token: str | None) -> str:
    return token[:8] if token else ""


def clock(t: datetime | None) -> str:
    return t.strftime("%H:%M:%S") if t else "-"


def show_result(event: Event) -> str:
    """The call's result as the original issue writes it."""
    if event.kind == "wait":
        return "waiting (blocked in PostgreSQL)"
    if event.kind == "clock":
        return f"clock now {clock(event.vtime)}"
    if event.kind == "stuck":
        return "stuck: can never finish"
    if event.error is not None:
        text = event.error.replace("StoreInputError: ", "refused: ")
        text = text if text.startswith("refused") else f"error: {text}"
    else:
        text = show_value(event.call, event.result)
    if event.kind == "done":
        text += " (after waiting)"
    return text


def show_value(call: str, value: Any) -> str:
    if isinstance(value, MarkResult):
        return (
            f"ok=true token={short(value.token)}"
            if value.ok and value.token
            else ("ok=true" if value.ok else "ok=false")
        )
    if isinstance(value, Freshness):
        return f"started_at={clock(value.started_at)} collected_at={clock(value.collected_at)}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if call == "receive":
        return f"payload token={short(value)}" if value else "nothing delivered"
    if value is None:
        return "done" if call in ("collect", "crash") else "ok"
    return str(value)


def show_marker(m: Marker | None) -> str:
    if m is None:
        return ""
    if not m.is_set:
        return "marker: -"
    owner = f" owner {short(m.owner)}" if m.owner else ""
    return f"marker: set {clock(m.started_at)}{owner}"


def event_json(event: Event, holder: str, found: list[Violation]) -> dict[str, Any]:
    m = event.state
    return {
        "type": "event",
        "seq": event.seq,
        "kind": event.kind,
        "label": event.label,
        "actor": event.actor,
        "call": event.call,
        "args": [str(a) for a in event.args],
        "result": show_result(event),
        "error": event.error,
        "sqlstate": event.sqlstate,
        "finished": event.finished,
        "marker": None
        if m is None
        else {
            "started_at": m.started_at.isoformat() if m.started_at else None,
            "owner": m.owner,
            "collected_at": m.collected_at.isoformat() if m.collected_at else None,
            "error": m.error,
        },
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
        print(text, file=self.err, flush=True)

    def line(self, text: str = "") -> None:
        if not self.as_json:
            print(text, file=self.out, flush=True)

    def progress(self, text: str) -> None:
        """A progress line: rewritten in place on a terminal, a plain line otherwise."""
        if self.as_json:
            return
        if self.out.isatty():
            print("\r" + text[:120].ljust(self._shown), end="", file=self.out, flush=True)
            self._shown = min(len(text), 120)
        else:
            print(text, file=self.out, flush=True)

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
        by_seq: dict[int, list[Violation]] = {}
        for v in outcome.checker.violations:
            by_seq.setdefault(v.seq, []).append(v)
        if self.as_json:
            for event, holder in zip(history.events, holders, strict=False):
                self.record(
                    {
                        "scenario": path,
                        "store": history.store,
                        **event_json(event, holder, by_seq.get(event.seq, [])),
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
            self.line(timeline_line(event, holder))
            for v in by_seq.get(event.seq, []):
                self.line(f"        !! {v.invariant}: {v.message}")
        mark = "skip" if verdict.skipped else "ok  " if verdict.matches else "FAIL"
        self.line(f"   {mark} {verdict.summary}")
        self.line()


HEAD_WIDTH = 60


def timeline_line(event: Event, holder: str) -> str:
    """``T+3   cron: clear -> ok   | marker: -  holder: user``, then how a run ended."""
    label = event.label or ""
    if event.kind == "clock":
        head = f"{event.call}  ({show_result(event)})"
    else:
        head = f"{event.actor}: {event.call} -> {show_result(event)}"
    if len(head) > HEAD_WIDTH:
        head = head[: HEAD_WIDTH - 1] + "…"
    tail = show_marker(event.state)
    if tail:
        tail = f"| {tail}  holder: {holder or '-'}"
    text = f"  {label:<6}{head:<{HEAD_WIDTH}} {tail}".rstrip()
    if event.finished is not None:
        text += f"\n        {event.actor} finished: {event.finished}"
    return text
