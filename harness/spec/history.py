"""A spec run recorded as racesim's histories, one per permutation, for the one report.

A step that completed without waiting is a ``step`` event; one that waited is a
``wait`` (its result says why: a lock and who holds it, a marker, ``(*)``) and
later a ``done``. The session is the actor, the step the call, its SQL the event's
statement; the result is what isolationtester printed for the step in a few words
(row counts, notices, notifications), or its error. Lines isolationtester writes to
its standard error (a failed setup, a step past its bound) go to the permutation's
verdict. Each permutation becomes a run view as soon as the next one starts (and
the last when the spec ends), so ``--json``, ``--format timeline`` and ``--html``
render a spec run as they render any run.

Example::

    recorder = Recorder("simple.spec", shown=reporter.view)
    completed = run_on(spec, dbs, Sink(out, err, recorder), timeout)
    recorder.finish(completed)
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from racesim.model.history import Event, EventKind, History
from racesim.model.outcome import Outcome
from racesim.model.show import Show
from racesim.model.verdict import Verdict
from racesim.model.violation import Violation
from racesim.report.view import RunView, build

__all__ = ["SHOW", "Recorder", "outcome_of"]

STORE = "spec"
"""What a spec run's views name as their store."""

_ERROR = re.compile(r"(ERROR|FATAL|PANIC):  ")
_ROWS = re.compile(r"\(\d+ rows?\)")
_NOTIFY = re.compile(r"[^:]+: NOTIFY ")
_WHY = {
    "marker": "finished, held back by its marker",
    "(*)": "marked (*): shown as waiting",
}


def outcome_of(text: str) -> str:
    """A completed step's outcome in a few words, from what isolationtester printed
    for it (its first line, the step's own, left out)."""
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


SHOW = Show(
    value=lambda call, value: str(value),
    error=lambda text: text,
    statement=lambda call, args, sql: _first_line(sql),
)
"""A spec run's values: results are already text; under each step its SQL's first line."""


@dataclass
class _Unchecked:
    """A spec run has no invariants: no violations, nobody holds anything."""

    events: int
    violations: list[Violation] = field(default_factory=list)

    @property
    def notes(self) -> list[str]:
        return [""] * self.events


@dataclass
class _Permutation:
    names: str
    history: History
    problems: list[str] = field(default_factory=list)


class Recorder:
    """Collects what a :class:`racesim.spec.run.Runner` reports, as model events."""

    def __init__(self, path: str, shown: Callable[[RunView], object] | None = None) -> None:
        self.path = path
        self.shown = shown
        self.runs: list[_Permutation] = []
        self.views: list[RunView] = []
        self._notices: dict[str, list[str]] = {}

    def permutation(self, names: str) -> None:
        if self.runs:
            self._show(self.runs[-1], True)
        history = History(scenario=self.path, store=STORE, show=SHOW)
        self.runs.append(_Permutation(names, history))
        self._notices.clear()

    def wait(
        self, session: str, step: str, sql: str, why: str, blockers: tuple[str, ...], t: float
    ) -> None:
        if why == "lock":
            held = f" held by {', '.join(blockers)}" if blockers else ""
            text = f"blocked on a lock{held}"
        else:
            text = _WHY.get(why, why)
        self._add("wait", session, step, sql, t, result=text, blocked_by=blockers)

    def notice(self, session: str, text: str) -> None:
        self._notices.setdefault(session, []).append(text)

    def completed(
        self, session: str, step: str, sql: str, waited: bool, printed: str, sqlstate: str, t: float
    ) -> None:
        """The step completed; ``printed`` is what isolationtester printed for it."""
        result = "; ".join([outcome_of(printed), *self._notices.pop(session, [])])
        severity, _, message = result.partition(":  ")
        failed = severity in ("ERROR", "FATAL", "PANIC") and message
        kind: EventKind = "done" if waited else "step"
        error = f"{severity}:  {message}" if failed else None
        self._add(kind, session, step, sql, t, result=result, error=error, sqlstate=sqlstate)

    def problem(self, text: str) -> None:
        """A line isolationtester writes to its standard error."""
        if self.runs:
            self.runs[-1].problems.append(text)

    def finish(self, completed: bool) -> list[RunView]:
        """The spec ended (``completed``: ran to its end): the last permutation's view
        is made, and every view returned."""
        if self.runs and len(self.views) < len(self.runs):
            self._show(self.runs[-1], completed)
        return self.views

    def _add(
        self,
        kind: EventKind,
        session: str,
        step: str,
        sql: str,
        t: float,
        result: str,
        error: str | None = None,
        sqlstate: str = "",
        blocked_by: tuple[str, ...] = (),
    ) -> None:
        if not self.runs:
            return
        history = self.runs[-1].history
        history.add(
            Event(
                seq=len(history.events),
                kind=kind,
                actor=session,
                call=step,
                result=result,
                error=error,
                sqlstate=sqlstate or None,
                wall=t,
                sql=sql,
                sent=(sql,),
                blocked_by=blocked_by,
            )
        )

    def _show(self, run: _Permutation, ran: bool) -> None:
        summary = "ran to its end" if ran else "stopped where isolationtester stops (exit 1)"
        if run.problems:
            summary += ": " + "; ".join(p.strip() for p in run.problems)
        if not ran:
            run.history.stuck = summary
        title = f"permutation {len(self.views) + 1}: {run.names}"
        outcome = Outcome(run.history, _Unchecked(len(run.history.events)))
        view = build(title, self.path, outcome, Verdict(ran, summary, ()))
        self.views.append(view)
        if self.shown is not None:
            self.shown(view)
