"""The naive claim: read the next job, then update it by id (the classic double claim).

Between the ``SELECT ... LIMIT 1`` and the ``UPDATE`` another worker can read
the same job, and the ``UPDATE`` does not look again at whether the job is still
claimable: two workers both get it, or a job already done is claimed again.
"""

from __future__ import annotations

from racesim.systems.jobqueue import _sql
from racesim.systems.jobqueue.base import BaseStore
from racesim.systems.jobqueue.interface import Claimed


class NaiveStore(BaseStore):
    name = "naive"

    def claim(self, job: int) -> Claimed | None:
        row = self.conn.execute(
            "UPDATE jobs " + _sql.CLAIM_SET + " WHERE id = %(job)s RETURNING id, attempts",
            {**_sql.claim_params(self.worker), "job": job},
        ).fetchone()
        return _sql.claimed(row)
