"""The owner-token fix: mark hands out a UUID, clear is compare-and-clear on it."""

from __future__ import annotations

import logging
from typing import Any

import psycopg

from racesim.store import _sql
from racesim.store.interface import Freshness, MarkResult, TokenSource, check_token, random_tokens

log = logging.getLogger("racesim.store.token")


class TokenStore:
    """The marker with an owner (schema version 3)."""

    name = "token"
    uses_tokens = True

    def __init__(self, conn: psycopg.Connection[Any], tokens: TokenSource = random_tokens) -> None:
        self.conn = conn
        self.tokens = tokens

    def mark(self) -> MarkResult:
        token = check_token(self.tokens())
        cur = self.conn.execute(
            "UPDATE recommendations_state"
            " SET last_collection_started_at = NOW(), last_collection_owner_id = %s "
            + _sql.MARK_GUARD,
            (token,),
        )
        if cur.rowcount != 1:
            return MarkResult(ok=False, token="")
        return MarkResult(ok=True, token=token)

    def clear(self, token: str) -> None:
        token = check_token(token)
        cur = self.conn.execute(
            "UPDATE recommendations_state"
            " SET last_collection_started_at = NULL, last_collection_owner_id = NULL"
            " WHERE id = 1 AND last_collection_owner_id = %s",
            (token,),
        )
        if cur.rowcount == 0:
            # The marker belongs to someone else now (or nobody): leave it alone.
            log.debug("clear: marker not owned by this token; nothing cleared")

    def set_collection_error(self, message: str) -> None:
        self.conn.execute(
            "UPDATE recommendations_state SET last_collection_error = %s WHERE id = 1",
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
