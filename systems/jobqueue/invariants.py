"""The job queue's invariants, judged after every event from racesim's own record.

The checker never reads the queue's columns to decide who holds a job: it
follows what the runs themselves saw (an enqueue's id, a claim that returned a
job, a processing that was accepted) and the virtual time of each call, and
measures every lease from the time its claim ran.

- ``one-holder``: a claim succeeds only on a job nobody else holds: never on a
  job already processed, never while another run's claim of it is inside its
  lease.
- ``processed-once``: no job's processing is accepted twice.
- ``no-lost-job``: a worker that finds the queue empty is right: every job
  enqueued and not processed is held by a claim still inside its lease (a job
  whose holder crashed comes back when the lease runs out, and must be found).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from racesim.system import Event, Violation
from racesim.systems.jobqueue.interface import LEASE, Claimed

ONE_HOLDER = "one-holder"
PROCESSED_ONCE = "processed-once"
NO_LOST_JOB = "no-lost-job"
INVARIANTS = (ONE_HOLDER, PROCESSED_ONCE, NO_LOST_JOB)


@dataclass(frozen=True)
class Hold:
    """A claim as its run saw it: who, which claim of the job, when it ran."""

    run: str
    attempt: int
    since: datetime

    def live(self, now: datetime) -> bool:
        return now < self.since + LEASE


@dataclass
class QueueChecker:
    """Feed events in order; collect violations. ``note()`` names who holds what."""

    actors: tuple[object, ...] = ()
    """The plan's actors (the checks need none of their settings)."""
    enqueued: list[int] = field(default_factory=list)
    holds: dict[int, list[Hold]] = field(default_factory=dict)
    processed: dict[int, str] = field(default_factory=dict)
    violations: list[Violation] = field(default_factory=list)
    _sent: dict[str, datetime] = field(default_factory=dict)
    """When each waiting call was sent: its statement's NOW()."""
    _lost_reported: set[tuple[int, datetime]] = field(default_factory=set)
    _now: datetime | None = None

    def note(self) -> str:
        """The runs whose claims are inside their lease, with their jobs: ``w1 #1, w2 #2``."""
        now = self._now
        held = [
            f"{h.run} #{job}"
            for job, holds in sorted(self.holds.items())
            for h in holds
            if now is not None and h.live(now)
        ]
        return ", ".join(held)

    def feed(self, event: Event) -> list[Violation]:
        found: list[Violation] = []
        if event.vtime is not None:
            self._now = event.vtime
        if event.kind == "wait" and event.vtime is not None:
            self._sent[event.actor] = event.vtime
        if event.kind in ("step", "done") and event.error is None and event.vtime is not None:
            sent = self._sent.pop(event.actor, event.vtime) if event.kind == "done" else None
            now = sent or event.vtime
            if event.call == "enqueue" and isinstance(event.result, int):
                self.enqueued.append(event.result)
            elif event.call == "claim" and isinstance(event.result, Claimed):
                found += self._claim(event, event.result, now)
            elif event.call == "process" and event.result is True:
                found += self._processed(event, int(event.args[0]))
            elif event.call == "process" and event.result is False:
                self._drop(int(event.args[0]), event.actor)
            elif event.call == "find" and event.result is None:
                found += self._empty(event, now)
        elif event.kind == "done":
            self._sent.pop(event.actor, None)
        self.violations += found
        return found

    def _claim(self, event: Event, claim: Claimed, now: datetime) -> list[Violation]:
        found = []
        job = claim.job
        if job in self.processed:
            found.append(
                _violation(
                    ONE_HOLDER,
                    event,
                    (event.actor, self.processed[job]),
                    f"{event.actor} claimed job {job}, which {self.processed[job]} has processed",
                    cause="claimed-when-done",
                )
            )
        else:
            for hold in self.holds.get(job, []):
                if hold.run != event.actor and hold.live(now):
                    found.append(
                        _violation(
                            ONE_HOLDER,
                            event,
                            (event.actor, hold.run),
                            f"{event.actor} claimed job {job} while {hold.run} holds it"
                            f" (lease until {_clock(hold.since + LEASE)})",
                            cause="claimed-while-held",
                        )
                    )
        self.holds.setdefault(job, []).append(Hold(event.actor, claim.attempt, now))
        return found

    def _processed(self, event: Event, job: int) -> list[Violation]:
        self.holds.pop(job, None)
        first = self.processed.get(job)
        if first is None:
            self.processed[job] = event.actor
            return []
        return [
            _violation(
                PROCESSED_ONCE,
                event,
                (event.actor, first),
                f"job {job} processed twice: by {first}, then by {event.actor}",
            )
        ]

    def _drop(self, job: int, run: str) -> None:
        self.holds[job] = [h for h in self.holds.get(job, []) if h.run != run]

    def _empty(self, event: Event, now: datetime) -> list[Violation]:
        found = []
        for job in self.enqueued:
            if job in self.processed:
                continue
            holds = self.holds.get(job, [])
            if any(h.live(now) for h in holds):
                continue
            since = max((h.since for h in holds), default=None)
            key = (job, since or now)
            if key in self._lost_reported:
                continue
            self._lost_reported.add(key)
            last = max(holds, key=lambda h: h.since) if holds else None
            why = (
                f"the lease of {last.run} ran out at {_clock(last.since + LEASE)}"
                if last
                else "it was never claimed"
            )
            runs = (event.actor, last.run) if last else (event.actor,)
            found.append(
                _violation(
                    NO_LOST_JOB,
                    event,
                    runs,
                    f"{event.actor} found the queue empty, but job {job} is waiting ({why})",
                    cause="lease-ran-out" if last else "never-claimed",
                )
            )
        return found


def _violation(
    name: str, event: Event, runs: tuple[str, ...], message: str, cause: str = ""
) -> Violation:
    return Violation(name, event.seq, event.label, event.actor, runs, message, cause)


def _clock(when: datetime) -> str:
    return when.strftime("%H:%M:%S.%f").removesuffix(".000000")


def check(events: Iterable[Event]) -> QueueChecker:
    """Every invariant over a whole history; the checker holds the verdict."""
    checker = QueueChecker()
    for event in events:
        checker.feed(event)
    return checker
