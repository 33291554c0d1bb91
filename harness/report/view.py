"""The view of one run: plain data built once from its history and verdict.

Every output is a rendering of this: the text timeline, the JSON lines and the
HTML swimlanes (:mod:`racesim.report.text`, :mod:`racesim.report.html`). No
renderer looks at the engine or the checks; the values are written here, once,
through the system's ``Show`` (the history carries it), so every output shows
them alike.

>>> view = build("T+0..T+4", "t.toml", outcome, verdict)      # doctest: +SKIP
>>> [lane for lane in view.lanes]                             # doctest: +SKIP
['cron-prev', 'user', 'cron', 'page']
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from racesim.model.history import Event
from racesim.model.violation import Violation
from racesim.report.values import clock, show_result, show_state

if TYPE_CHECKING:
    from racesim.model.outcome import Outcome
    from racesim.model.show import Show
    from racesim.model.verdict import Verdict

__all__ = ["EventView", "RunView", "Span", "StateView", "VerdictView", "ViolationView", "build"]


ViolationView = Violation
"""A broken invariant at one event: the checks' own Violation, already plain data."""


@dataclass(frozen=True)
class StateView:
    """The watched state after an event, as text for people and a JSON value for programs."""

    text: str
    data: Any


@dataclass(frozen=True)
class EventView:
    """One event as every output shows it."""

    seq: int
    kind: str
    label: str
    actor: str
    call: str
    line: int | None
    args: tuple[str, ...]
    result: str
    """The result (or error) as people read it."""
    error: str | None
    sqlstate: str | None
    finished: str | None
    state: StateView | None
    """None when the state was read once for a group of completions (the last carries it)."""
    holder: str
    """Who racesim believes holds the watched state after the event ('' for nobody)."""
    vtime: str | None
    """Virtual time, ISO 8601."""
    vclock: str
    """Virtual time of day, ``HH:MM:SS`` (or ``-``)."""
    wall_ms: float
    violations: tuple[ViolationView, ...]
    blocked_by: tuple[str, ...] = ()
    """For ``wait``: the sessions it waits on, by actor name."""
    sql: str = ""
    """The statement the step sent, when it sent one."""
    sign: str = ""
    """What the event is on its lane besides a step: crash, terminate, restart, fault, stuck."""
    statement: str = ""
    """The step's statement as the timeline writes it under the step, for systems whose
    steps are statements (``Show.statement``); "" otherwise."""


@dataclass(frozen=True)
class Span:
    """A step on its lane, from sending it (``start``) to its completion (``end``).

    ``start`` and ``end`` are indexes into ``RunView.events``; a step that waited
    has ``waited`` set and ends at its ``done`` event (or at the last event when
    it never completed).
    """

    actor: str
    call: str
    start: int
    end: int
    waited: bool
    completed: bool
    blocked_by: tuple[str, ...]
    failed: bool


@dataclass(frozen=True)
class VerdictView:
    matches: bool
    skipped: bool
    summary: str
    tag: str
    """``ok``, ``FAIL`` or ``skip``."""
    violations: tuple[ViolationView, ...]
    stuck: str | None


@dataclass(frozen=True)
class RunView:
    """Everything a report of one run shows."""

    title: str
    path: str
    store: str
    events: tuple[EventView, ...]
    lanes: tuple[str, ...]
    spans: tuple[Span, ...]
    verdict: VerdictView
    state_key: str = "state"
    """The name JSON lines give the watched state (the system's)."""


def build(title: str, path: str, outcome: Outcome, verdict: Verdict) -> RunView:
    """The view of one run, from its history, the checker's notes and the verdict."""
    history, holders, show = outcome.history, outcome.checker.notes, outcome.history.show
    by_seq: dict[int, list[ViolationView]] = {}
    for v in outcome.checker.violations:
        by_seq.setdefault(v.seq, []).append(v)
    events = tuple(
        _event(event, holder, tuple(by_seq.get(event.seq, [])), show)
        for event, holder in zip(history.events, holders, strict=False)
    )
    return RunView(
        title=title,
        path=path,
        store=history.store,
        events=events,
        lanes=_lanes(events),
        spans=_spans(events),
        verdict=VerdictView(
            matches=verdict.matches,
            skipped=verdict.skipped,
            summary=verdict.summary,
            tag="skip" if verdict.skipped else "ok" if verdict.matches else "FAIL",
            violations=tuple(verdict.violations),
            stuck=history.stuck,
        ),
        state_key=show.state_key,
    )


def _event(event: Event, holder: str, found: tuple[ViolationView, ...], show: Show) -> EventView:
    return EventView(
        seq=event.seq,
        kind=event.kind,
        label=event.label,
        actor=event.actor,
        call=event.call,
        line=event.line,
        args=tuple(str(a) for a in event.args),
        result=show_result(event, show),
        error=event.error,
        sqlstate=event.sqlstate,
        finished=event.finished,
        state=None
        if event.state is None
        else StateView(show_state(event.state, show), show.state_json(event.state)),
        holder=holder,
        vtime=event.vtime.isoformat() if event.vtime else None,
        vclock=clock(event.vtime),
        wall_ms=round(event.wall * 1000, 3),
        violations=found,
        blocked_by=event.blocked_by,
        sql=event.sql,
        sign=_sign(event),
        statement=show.statement(event.call, event.args, event.sql)
        if show.statement is not None and event.kind in ("step", "wait")
        else "",
    )


def _sign(event: Event) -> str:
    if event.kind == "stuck":
        return "stuck"
    if event.kind == "outage":
        if event.finished is not None and event.finished.startswith("crashed"):
            return "crash"
        return event.call  # terminate (the monitor) or restart (reconnected, or the server)
    if event.call == "crash":
        return "crash"
    if event.error is not None and event.error.startswith("InjectedFault"):
        return "fault"
    return ""


def _lanes(events: tuple[EventView, ...]) -> tuple[str, ...]:
    """One lane per actor (and per outage target), in order of first appearance."""
    seen: dict[str, None] = {}
    for e in events:
        if e.kind != "clock":
            seen.setdefault(e.actor, None)
    return tuple(seen)


def _spans(events: tuple[EventView, ...]) -> tuple[Span, ...]:
    """Each step (or waiting step) paired with its completion."""
    spans: list[Span] = []
    waiting: dict[str, int] = {}
    for i, e in enumerate(events):
        if e.kind == "step":
            spans.append(Span(e.actor, e.call, i, i, False, True, (), e.error is not None))
        elif e.kind == "wait":
            waiting[e.actor] = len(spans)
            spans.append(
                Span(e.actor, e.call, i, len(events) - 1, True, False, e.blocked_by, False)
            )
        elif e.kind == "done" and e.actor in waiting:
            k = waiting.pop(e.actor)
            s = spans[k]
            spans[k] = Span(
                s.actor, s.call, s.start, i, True, True, s.blocked_by, e.error is not None
            )
    return tuple(spans)
