"""The reference system's invariants, judged after every event from racesim's own record.

The checks never trust the store's owner column to decide who holds the
marker: they follow the results the runs themselves saw (a mark that returned
ok, an invoke that handed the token on, a lock that a delivered invocation
took) and compare that ghost record with the marker row after each event.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from racesim.store.interface import STALE_AFTER
from racesim.system import Actor, Event, Violation

NO_FOREIGN_CLEAR = "no-foreign-clear"
BANNER_STAYS_UP = "banner-stays-up"
NAMES = (NO_FOREIGN_CLEAR, BANNER_STAYS_UP)


@dataclass(frozen=True)
class Marker:
    """The marker row as a monitor session saw it (committed state): the watched state."""

    started_at: datetime | None
    owner: str | None = None
    collected_at: datetime | None = None
    error: str | None = None

    @property
    def is_set(self) -> bool:
        return self.started_at is not None


NO_MARKER = Marker(None)


@dataclass(frozen=True)
class Claim:
    """Which run racesim believes holds the marker, and since when."""

    run: str
    token: str
    started_at: datetime | None
    delegates: frozenset[str] = frozenset()
    """Runs the holder handed its token to (async invoke), not yet collecting."""


@dataclass
class MarkerChecks:
    """The invariants of one run; ``feed`` events in order (``racesim.system.Invariants``)."""

    recipients: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Per run, the runs its invoke is delivered to."""
    claim: Claim | None = None
    marker: Marker = NO_MARKER
    finished: set[str] = field(default_factory=set)
    _banner_reported: set[tuple[str, datetime | None]] = field(default_factory=set)

    @classmethod
    def of(cls, actors: tuple[Actor, ...]) -> MarkerChecks:
        return cls(
            recipients={
                a.name: tuple(b.name for b in actors if b.options.get("invoked_by") == a.name)
                for a in actors
            }
        )

    def note(self) -> str:
        """The run that holds the marker, by the results the runs saw ("" for none)."""
        return self.claim.run if self.claim else ""

    def feed(self, event: Event) -> list[Violation]:
        found: list[Violation] = []
        state = event.state
        if isinstance(state, Marker):
            found += self._marker_change(event, self.marker, state)
            self.marker = state
        self._follow(event)
        if event.finished is not None:
            self.finished.add(event.actor)
        if isinstance(state, Marker):
            found += self._banner(event)
        return found

    def _entitled(self, actor: str) -> bool:
        h = self.claim
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
        h = self.claim
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
                cause=f"{what}-by-{event.call}",
            )
        ]

    def _follow(self, event: Event) -> None:
        """Update the ghost record of ownership from what the run saw."""
        h = self.claim
        state = event.state if isinstance(event.state, Marker) else None
        if _mark_ok(event):
            started = self.marker.started_at if state is not None else event.vtime
            self.claim = Claim(event.actor, event.result.token, started)
        elif h is None:
            return
        elif event.call == "invoke" and event.error is None and event.actor == h.run:
            delivered = self.recipients.get(event.actor, ())
            self.claim = replace(h, delegates=h.delegates | set(delivered))
        elif event.call == "try_task_lock" and event.result is True and event.actor in h.delegates:
            self.claim = Claim(event.actor, h.token, h.started_at)
        elif (state is not None and not state.is_set and self._entitled(event.actor)) or (
            event.call == "clear" and event.error is None and self._entitled(event.actor)
        ):
            self.claim = None

    def _in_progress(self, claim: Claim) -> bool:
        return claim.run not in self.finished or any(
            d not in self.finished for d in claim.delegates
        )

    def _banner(self, event: Event) -> list[Violation]:
        h = self.claim
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
        gone = not m.is_set
        how = "gone" if gone else "someone else's"
        return [
            Violation(
                BANNER_STAYS_UP,
                event.seq,
                event.label,
                event.actor,
                (h.run,),
                f"{h.run} is still collecting but the marker is {how}",
                cause="gone" if gone else "taken",
            )
        ]


def _mark_ok(event: Event) -> bool:
    return event.call == "mark" and event.error is None and bool(getattr(event.result, "ok", False))
