"""SQL both claim variants share: enqueue, the plain read, and the fenced processing."""

from __future__ import annotations

from typing import Any

import psycopg

from racesim.systems.jobqueue.interface import LEASE, Claimed

CLAIMABLE = "(status = 'queued' OR (status = 'running' AND lease_until <= NOW()))"
"""A job nobody holds: never claimed, or its claim's lease has run out."""

CLAIM_SET = (
    "SET status = 'running', claimed_by = %(worker)s, attempts = attempts + 1,"
    " lease_until = NOW() + %(lease)s"
)


def enqueue(conn: psycopg.Connection[Any], payload: str) -> int:
    row = conn.execute(
        "INSERT INTO jobs (payload, enqueued_at) VALUES (%s, NOW()) RETURNING id", (payload,)
    ).fetchone()
    assert row is not None
    return int(row[0])


def find(conn: psycopg.Connection[Any]) -> int | None:
    row = conn.execute("SELECT id FROM jobs WHERE " + CLAIMABLE + " ORDER BY id LIMIT 1").fetchone()
    return int(row[0]) if row else None


def claimed(row: tuple[Any, ...] | None) -> Claimed | None:
    return Claimed(int(row[0]), int(row[1])) if row else None


def claim_params(worker: str) -> dict[str, Any]:
    return {"worker": worker, "lease": LEASE}


def process(conn: psycopg.Connection[Any], worker: str, job: int, attempt: int) -> bool:
    with conn.transaction():
        cur = conn.execute(
            "UPDATE jobs SET status = 'done', lease_until = NULL"
            " WHERE id = %s AND status = 'running' AND claimed_by = %s AND attempts = %s",
            (job, worker, attempt),
        )
        if cur.rowcount != 1:
            return False  # the lease ran out and another claim took the job over
        conn.execute(
            "INSERT INTO job_results (job_id, worker, attempt, processed_at)"
            " VALUES (%s, %s, %s, NOW())",
            (job, worker, attempt),
        )
    return True
