"""The SKIP LOCKED claim: one UPDATE whose subquery picks and locks the next free job.

``UPDATE jobs ... WHERE id = (SELECT id ... FOR UPDATE SKIP LOCKED LIMIT 1)``
decides and takes in one statement: the subquery locks the row it picks (rows
another transaction is claiming are skipped, not waited for), and a row some
other claim changed since the statement's snapshot is checked again before it
is taken. The job ``find`` saw is only the reason to try; the claim takes
whichever job is next when it runs, or none.
"""

from __future__ import annotations

from racesim.systems.jobqueue import _sql
from racesim.systems.jobqueue.base import BaseStore
from racesim.systems.jobqueue.interface import Claimed

CLAIM = (
    "UPDATE jobs " + _sql.CLAIM_SET + " WHERE id = ("
    "SELECT id FROM jobs WHERE " + _sql.CLAIMABLE + " ORDER BY id"
    " FOR UPDATE SKIP LOCKED LIMIT 1"
    ") RETURNING id, attempts"
)


class SkipLockedStore(BaseStore):
    name = "skiplocked"

    def claim(self, job: int) -> Claimed | None:
        return _sql.claimed(self.conn.execute(CLAIM, _sql.claim_params(self.worker)).fetchone())
