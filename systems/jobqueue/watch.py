"""What racesim watches after every event: the jobs, and how they and the calls are shown."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from racesim.systems.jobqueue.interface import Claimed

SQL_CALLS = frozenset({"begin", "lock_first", "commit", "rollback"})

SHOWN = 20
"""Jobs read (and shown) after each event: the first ones by id."""

STATE = (
    "SELECT j.id, j.status, j.claimed_by, j.attempts, j.lease_until,"
    " (SELECT count(*) FROM job_results r WHERE r.job_id = j.id)"
    " FROM jobs j ORDER BY j.id LIMIT %s"
)


@dataclass(frozen=True)
class Job:
    """One row of ``jobs`` as the monitor session saw it, with its count of results."""

    id: int
    status: str
    claimed_by: str | None
    attempts: int
    lease_until: datetime | None
    results: int


Jobs = tuple[Job, ...]


def read(conn: psycopg.Connection[Any]) -> Jobs:
    rows = conn.execute(STATE, (SHOWN,)).fetchall()
    return tuple(Job(int(r[0]), r[1], r[2], int(r[3]), r[4], int(r[5])) for r in rows)


def show_state(jobs: Jobs) -> str:
    """``jobs: #1 running w1 until 12:00:31  #2 queued`` (a job with results shows them)."""
    if not jobs:
        return "jobs: -"
    parts = []
    for j in jobs:
        text = f"#{j.id} {j.status}"
        if j.status != "queued" and j.claimed_by:
            text += f" {j.claimed_by}"
        if j.status == "running" and j.lease_until is not None:
            text += f" until {j.lease_until.strftime('%H:%M:%S')}"
        if j.results:
            text += f" ({j.results} result{'s' if j.results != 1 else ''})"
        parts.append(text)
    return "jobs: " + "  ".join(parts)


def state_json(jobs: Jobs) -> list[dict[str, Any]]:
    """The jobs as JSON values (times in ISO 8601)."""
    return [
        {
            "id": j.id,
            "status": j.status,
            "claimed_by": j.claimed_by,
            "attempts": j.attempts,
            "lease_until": j.lease_until.isoformat() if j.lease_until else None,
            "results": j.results,
        }
        for j in jobs
    ]


def show_result(call: str, value: Any) -> str:
    """A call's result as the timeline shows it."""
    if isinstance(value, Claimed):
        return f"job {value.job} (attempt {value.attempt})"
    if call in ("find", "claim") and value is None:
        return "none"
    if call == "find":
        return f"job {value}"
    if call in SQL_CALLS:
        return "ok"  # a fixed statement of the auditor's transaction
    if call == "process":
        return "done" if value is True else "refused: claim lost"
    if call == "enqueue":
        return f"job {value}"
    return "ok" if value is None else str(value)
