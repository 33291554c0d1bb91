"""The naive claim: read the next job, then update it by id (the classic double claim).

Between the ``SELECT ... LIMIT 1`` and the ``UPDATE`` another worker can read
the same job, and the ``UPDATE`` does not look again at whether the job is still
claimable: two workers both get it, or a job already done is claimed again.
"""

from __future__ import annotations

from typing import Any

import psycopg

from racesim.systems.jobqueue import _sql
from racesim.systems.jobqueue.interface import Claimed


class NaiveStore:
    name = "naive"

    def __init__(self, conn: psycopg.Connection[Any], worker: str) -> None:
        self.conn = conn
        self.worker = worker

    def enqueue(self, payload: str) -> int:
        return _sql.enqueue(self.conn, payload)

    def find(self) -> int | None:
        return _sql.find(self.conn)

    def claim(self, job: int) -> Claimed | None:
        row = self.conn.execute(
            "UPDATE jobs " + _sql.CLAIM_SET + " WHERE id = %(job)s RETURNING id, attempts",
            {**_sql.claim_params(self.worker), "job": job},
        ).fetchone()
        return _sql.claimed(row)

    def process(self, job: int, attempt: int) -> bool:
        return _sql.process(self.conn, self.worker, job, attempt)

    def close(self) -> None:
        self.conn.close()
