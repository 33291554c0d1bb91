"""A spec run as racesim's run views (one per permutation), for the HTML page.

Each permutation becomes a history of its own: a step that completed without
waiting is a ``step`` event, one that waited a ``wait`` and then a ``done``; the
session is the lane, the step's SQL and what isolationtester printed for it are the
event's statement and result. There are no invariants, so the verdict says whether
the permutation ran to its end.
"""

from __future__ import annotations

from racesim.checks.invariants import Checker
from racesim.model.history import Event, EventKind, History
from racesim.model.outcome import Outcome
from racesim.model.verdict import Verdict
from racesim.report.view import RunView, build
from racesim.spec import run
from racesim.spec.report import outcome_of

__all__ = ["views"]


def views(path: str, events: list[run.Event], completed: bool) -> list[RunView]:
    """The view of each permutation of a spec run, from the run's events."""
    perms: list[tuple[str, list[run.Event]]] = []
    for e in events:
        if e.kind == "permutation":
            perms.append((e.text, []))
        elif perms:
            perms[-1][1].append(e)
    out = []
    for i, (names, happened) in enumerate(perms):
        history = _history(path, happened)
        last = i == len(perms) - 1
        ran = completed or not last
        summary = "ran to its end" if ran else "stopped where isolationtester stops (exit 1)"
        checker = Checker()
        for event in history.events:
            checker.feed(event)
        title = f"permutation {i + 1}: {names}"
        out.append(build(title, path, Outcome(history, checker), Verdict(ran, summary, ())))
    return out


def _history(path: str, happened: list[run.Event]) -> History:
    history = History(scenario=path, store="spec")
    waited: set[str] = set()
    for e in happened:
        if e.kind == "wait":
            if e.step not in waited:
                waited.add(e.step)
                history.add(_event(len(history.events), "wait", e, "waiting", blockers=e.blockers))
        elif e.kind == "done":
            kind: EventKind = "done" if e.step in waited else "step"
            waited.discard(e.step)
            result = outcome_of(e.text)
            severity, _, message = result.partition(":  ")
            failed = severity in ("ERROR", "FATAL", "PANIC") and message
            error = f"{message} ({severity})" if failed else None
            history.add(_event(len(history.events), kind, e, result, error))
    return history


def _event(
    seq: int,
    kind: EventKind,
    e: run.Event,
    result: str,
    error: str | None = None,
    blockers: tuple[str, ...] = (),
) -> Event:
    return Event(
        seq=seq,
        kind=kind,
        actor=e.session,
        call=e.step,
        result=result,
        error=error,
        wall=e.t,
        sql=e.sql,
        sent=(e.sql,),
        blocked_by=blockers,
    )
