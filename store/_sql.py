"""SQL shared by the PostgreSQL stores, written as in the reference system."""

from __future__ import annotations

from typing import Any

import psycopg

from racesim.store.interface import Freshness

MARK_GUARD = (
    "WHERE id = 1 AND (last_collection_started_at IS NULL"
    " OR last_collection_started_at < NOW() - INTERVAL '5 minutes')"
)


def upsert_recommendations(conn: psycopg.Connection[Any]) -> None:
    with conn.transaction():
        conn.execute(
            "UPDATE recommendations_state"
            " SET last_collected_at = NOW(), last_collection_error = NULL WHERE id = 1"
        )


def get_freshness(conn: psycopg.Connection[Any]) -> Freshness:
    row = conn.execute(
        "SELECT last_collected_at, last_collection_error, last_collection_started_at"
        " FROM recommendations_state WHERE id = 1"
    ).fetchone()
    if row is None:
        return Freshness(None, None, None)
    return Freshness(collected_at=row[0], error=row[1], started_at=row[2])


def try_task_lock(conn: psycopg.Connection[Any], key: int) -> bool:
    row = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
    return bool(row and row[0])


def release_task_lock(conn: psycopg.Connection[Any], key: int) -> bool:
    row = conn.execute("SELECT pg_advisory_unlock(%s)", (key,)).fetchone()
    return bool(row and row[0])
