"""The job queue's one interface, shared by its two claim variants.

A job is a row of ``jobs``. A worker claims it (status ``running``, a lease
until ``NOW() + LEASE``, ``attempts`` counting the claims), then processes it:
one transaction that records the job's result in ``job_results`` and marks the
job ``done``, fenced by the claim (the job is still ``running`` under this
worker's name and attempt). A claim whose lease has run out may be taken over
by the next claim: that is how a job held by a crashed worker comes back.
``NOW()`` is PostgreSQL's, so under racesim it is the virtual clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

LEASE = timedelta(seconds=30)
"""How long a claim holds its job (the visibility timeout); at ``claimed + LEASE``
the job is claimable again."""


@dataclass(frozen=True)
class Claimed:
    """What a successful claim returns: the job, and which claim of it this is."""

    job: int
    attempt: int


class QueueStore(Protocol):
    """One worker's (or producer's) view of the queue, on its own session."""

    name: str

    def enqueue(self, payload: str) -> int:
        """Add a job; its id."""
        ...

    def find(self) -> int | None:
        """The next claimable job, as a plain read (None when there is none)."""
        ...

    def claim(self, job: int) -> Claimed | None:
        """Claim a job after ``find`` saw ``job``; None when there is nothing to claim."""
        ...

    def process(self, job: int, attempt: int) -> bool:
        """Record the job's result and mark it done, if this claim still holds it."""
        ...

    def close(self) -> None: ...
