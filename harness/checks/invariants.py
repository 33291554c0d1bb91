"""Invariants judged after every event, from the harness's own record of ownership.

The checker never trusts the store's owner column to decide who holds the
marker: it follows the results the runs themselves saw (a mark that returned
ok, an invoke that handed the token on, a lock that a delivered invocation
took) and compares that ghost record with the marker row after each event.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from racesim.model.history import NO_MARKER, NOT_COMPARED, Event, Marker
from racesim.model.violation import Violation as Violation

STALE_AFTER = timedelta(minutes=5)

NO_FOREIGN_CLEAR = "no-foreign-clear"
BANNER_STAYS_UP = "banner-stays-up"
MODEL_AGREEMENT = "model-agreement"
INVARIANTS = (NO_FOREIGN_CLEAR, BANNER_STAYS_UP, MODEL_AGREEMENT)


@dataclass(frozen=True)
class Claim:
    """Which run the harness believes holds the marker, and since when."""

    run: str
    token: str
    started_at: datetime | None
    delegates: frozenset[str] = frozenset()
    """Runs the holder handed its token to (async invoke), not yet collecting."""


@dataclass
class Checker:
    """Feed events in order; collect violations and the holder after each event."""

    compare_model: bool = False
    holder: Claim | None = None
    marker: Marker = NO_MARKER
    finished: set[str] = field(default_factory=set)
    violations: list[Violation] = field(default_factory=list)
    holders: list[str] = field(default_factory=list)
    _banner_reported: set[tuple[str, datetime | None]] = field(default_factory=set)

    def feed(self, event: Event) -> list[Violation]:
        found: list[Violation] = []
        if event.state is not None:
            found += self._marker_change(event, self.marker, event.state)
            self.marker = event.state
        self._follow(event)
        if event.finished is not None:
            self.finished.add(event.actor)
        if event.state is not None:
            found += self._banner(event)
        if self.compare_model:
            found += self._model(event)
        self.violations += found
        self.holders.append(self.holder.run if self.holder else "")
        return found

    def _entitled(self, actor: str) -> bool:
        h = self.holder
        return h is None or actor == h.run or actor in h.delegates

    def _stale(self, claim: Claim, now: datetime | None) -> bool:
        return (
            claim.started_at is not None
            and now is not None
            and claim.started_at < now - STALE_AFTER
        )

    def _marker_change(self, event: Event, before: Marker, after: Marker) -> list[Violation]:
        if not before.is_set:
            return []
        replaced = after.is_set and (
            after.started_at != before.started_at or after.owner != before.owner
        )
        if after.is_set and not replaced:
            return []
        h = self.holder
        if h is None or self._entitled(event.actor):
            return []
        if replaced and _mark_ok(event) and self._stale(h, event.vtime):
            return []  # the 5-minute takeover: the designed recovery, not a foreign clear
        what = "replaced" if replaced else "cleared"
        return [
            Violation(
                NO_FOREIGN_CLEAR,
                event.seq,
                event.label,
                event.actor,
                (event.actor, h.run),
                f"{event.actor} {what} the marker of {h.run} with {event.call}",
            )
        ]

    def _follow(self, event: Event) -> None:
        """Update the ghost record of ownership from what the run saw."""
        h = self.holder
        if _mark_ok(event):
            self.holder = Claim(event.actor, event.result.token, _started(event, self.marker))
        elif h is None:
            return
        elif event.call == "invoke" and event.error is None and event.actor == h.run:
            self.holder = replace(h, delegates=h.delegates | set(event.recipients))
        elif event.call == "try_task_lock" and event.result is True and event.actor in h.delegates:
            self.holder = Claim(event.actor, h.token, h.started_at)
        elif (
            event.state is not None and not event.state.is_set and self._entitled(event.actor)
        ) or (event.call == "clear" and event.error is None and self._entitled(event.actor)):
            self.holder = None

    def _in_progress(self, claim: Claim) -> bool:
        return claim.run not in self.finished or any(
            d not in self.finished for d in claim.delegates
        )

    def _banner(self, event: Event) -> list[Violation]:
        h = self.holder
        if h is None or not self._in_progress(h) or self._stale(h, event.vtime):
            return []
        m = self.marker
        ok = m.is_set and m.started_at == h.started_at
        if ok and m.owner is not None and h.token:
            ok = m.owner == h.token
        key = (h.run, h.started_at)
        if ok or key in self._banner_reported:
            return []
        self._banner_reported.add(key)
        return [
            Violation(
                BANNER_STAYS_UP,
                event.seq,
                event.label,
                event.actor,
                (h.run,),
                f"{h.run} is still collecting but the marker is "
                + ("gone" if not m.is_set else "someone else's"),
            )
        ]

    def _model(self, event: Event) -> list[Violation]:
        if event.kind not in ("step", "done") or event.model is NOT_COMPARED:
            return []
        same = (
            event.error == event.model_error
            if event.error or event.model_error
            else (event.result == event.model)
        )
        if same:
            return []
        got = event.error or repr(event.result)
        want = event.model_error or repr(event.model)
        return [
            Violation(
                MODEL_AGREEMENT,
                event.seq,
                event.label,
                event.actor,
                (event.actor,),
                f"{event.call}: store gave {got}, model gives {want}",
            )
        ]


def _mark_ok(event: Event) -> bool:
    return event.call == "mark" and event.error is None and bool(getattr(event.result, "ok", False))


def _started(event: Event, marker: Marker) -> datetime | None:
    return marker.started_at if event.state is not None else event.vtime


def check(events: Iterable[Event], compare_model: bool = False) -> Checker:
    """Run every invariant over a whole history; the checker holds the verdict."""
    checker = Checker(compare_model=compare_model)
    for event in events:
        checker.feed(event)
    return checker
