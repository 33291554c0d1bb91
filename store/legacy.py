"""The marker protocol before the fix: one shared flag, cleared by anyone."""

from __future__ import annotations

from typing import Any

import psycopg

from racesim.store import _sql
from racesim.store.interface import Freshness, MarkResult


class LegacyStore:
    """``last_collection_started_at`` as a bare flag (schema version 2 or later).

    ``clear`` ignores its token and wipes whatever marker is there, and
    ``set_collection_error`` clears the marker a second time: the two behaviours
    that make the race of the reference issue possible.
    """

    name = "legacy"
    uses_tokens = False

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    def mark(self) -> MarkResult:
        cur = self.conn.execute(
            "UPDATE recommendations_state SET last_collection_started_at = NOW() " + _sql.MARK_GUARD
        )
        return MarkResult(ok=cur.rowcount == 1)

    def clear(self, token: str = "") -> None:
        self.conn.execute(
            "UPDATE recommendations_state SET last_collection_started_at = NULL WHERE id = 1"
        )

    def set_collection_error(self, message: str) -> None:
        self.conn.execute(
            "UPDATE recommendations_state"
            " SET last_collection_error = %s, last_collection_started_at = NULL WHERE id = 1",
            (message,),
        )

    def upsert_recommendations(self) -> None:
        _sql.upsert_recommendations(self.conn)

    def get_freshness(self) -> Freshness:
        return _sql.get_freshness(self.conn)

    def try_task_lock(self, key: int) -> bool:
        return _sql.try_task_lock(self.conn, key)

    def release_task_lock(self, key: int) -> bool:
        return _sql.release_task_lock(self.conn, key)

    def close(self) -> None:
        self.conn.close()
