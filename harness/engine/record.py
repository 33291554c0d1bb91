"""The record of a run as the engine writes it: events in order, each with the
system's watched state after it, fed to the checks as they come."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from racesim.checks.invariants import Checker
from racesim.model.history import NOT_COMPARED, Event, EventKind, History


@dataclass
class Draft:
    """An event before its place in the history (and the watched state) is known."""

    kind: EventKind
    actor: str
    call: str
    label: str
    line: int | None
    vtime: datetime | None
    wall: float
    args: tuple[Any, ...] = ()
    result: Any = None
    error: str | None = None
    sqlstate: str | None = None
    finished: str | None = None
    model: Any = field(default=NOT_COMPARED)
    model_error: str | None = None
    blocked_after: float = 0.0
    blocked_by: tuple[str, ...] = ()
    sent: tuple[str, ...] = ()
    session_ended: bool = False

    def event(self, seq: int, state: Any) -> Event:
        return Event(
            seq=seq,
            kind=self.kind,
            actor=self.actor,
            call=self.call,
            label=self.label,
            line=self.line,
            args=self.args,
            result=self.result,
            error=self.error,
            sqlstate=self.sqlstate,
            state=state,
            vtime=self.vtime,
            wall=self.wall,
            finished=self.finished,
            model=self.model,
            model_error=self.model_error,
            blocked_after=self.blocked_after,
            blocked_by=self.blocked_by,
            sql="\n".join(self.sent),
            sent=self.sent,
            session_ended=self.session_ended,
        )


class Recorder:
    """Turns drafts into the history's events and feeds them to the checker.

    ``now`` is the virtual time (stamped on each draft); ``watch`` reads the
    system's watched state, once per group of drafts recorded together.
    """

    def __init__(
        self,
        history: History,
        checker: Checker,
        now: Callable[[], datetime],
        watch: Callable[[], Any],
    ) -> None:
        self.history = history
        self.checker = checker
        self.now = now
        self.watch = watch
        self.started = time.perf_counter()
        self.seq = -1
        self.state: Any = None
        """The watched state as last read."""

    def event(
        self, kind: EventKind, actor: str, call: str, label: str, line: int | None, **fields: Any
    ) -> Draft:
        """An event but for its place; ``record`` makes the Event once the state is read."""
        return Draft(
            kind,
            actor,
            call,
            label,
            line,
            self.now(),
            time.perf_counter() - self.started,
            **fields,
        )

    def record(self, drafts: list[Draft], watch: bool = True) -> None:
        """Add ``drafts`` in order; the last carries the state read now (none when
        not ``watch``: the state is then read with the next group)."""
        last = len(drafts) - 1
        state = self.watch() if watch else None
        if watch:
            self.state = state
        for i, draft in enumerate(drafts):
            self.seq += 1
            event = draft.event(self.seq, state if i == last else None)
            self.history.add(event)
            self.checker.feed(event)
