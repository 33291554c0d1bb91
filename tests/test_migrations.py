"""The reference schema's migrations, up and down, on a real PostgreSQL."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg import errors

from store import LATEST
from store.migrations import MIGRATIONS, current_version, migrate

Conn = psycopg.Connection[Any]

COLUMNS_AT = {
    1: ["id", "last_collected_at", "last_collection_error"],
    2: ["id", "last_collected_at", "last_collection_error", "last_collection_started_at"],
    3: [
        "id",
        "last_collected_at",
        "last_collection_error",
        "last_collection_started_at",
        "last_collection_owner_id",
    ],
}


def columns(conn: Conn) -> list[str]:
    rows = conn.execute(
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_schema = 'public' AND table_name = 'recommendations_state'"
        " ORDER BY ordinal_position"
    ).fetchall()
    return [r[0] for r in rows]


def owner_column(conn: Conn) -> tuple[str, str, str | None] | None:
    """(data_type, is_nullable, column_default) of the owner column, or None if absent."""
    row = conn.execute(
        "SELECT data_type, is_nullable, column_default FROM information_schema.columns"
        " WHERE table_schema = 'public' AND table_name = 'recommendations_state'"
        " AND column_name = 'last_collection_owner_id'"
    ).fetchone()
    return None if row is None else (row[0], row[1], row[2])


def table_exists(conn: Conn) -> bool:
    row = conn.execute("SELECT to_regclass('public.recommendations_state') IS NOT NULL").fetchone()
    assert row is not None
    return bool(row[0])


def ids(conn: Conn) -> list[int]:
    return [r[0] for r in conn.execute("SELECT id FROM recommendations_state ORDER BY id")]


def test_fresh_database_is_at_the_latest_version(conn: Conn) -> None:
    assert LATEST == len(MIGRATIONS) == 3
    assert [m.version for m in MIGRATIONS] == [1, 2, 3]
    assert current_version(conn) == LATEST
    assert columns(conn) == COLUMNS_AT[3]
    assert ids(conn) == [1]


def test_owner_column_goes_up_and_down(conn: Conn) -> None:
    assert migrate(conn, to=2) == 2
    assert current_version(conn) == 2
    assert owner_column(conn) is None
    assert columns(conn) == COLUMNS_AT[2]

    assert migrate(conn, to=3) == 3
    # Nullable UUID, no default: existing rows get NULL, as the reference's 000048.
    assert owner_column(conn) == ("uuid", "YES", None)
    assert columns(conn) == COLUMNS_AT[3]
    indexes = conn.execute(
        "SELECT indexdef FROM pg_indexes WHERE tablename = 'recommendations_state'"
    ).fetchall()
    assert not any("owner" in r[0] for r in indexes), indexes

    assert migrate(conn, to=2) == 2
    assert owner_column(conn) is None
    assert current_version(conn) == 2


def test_down_step_drops_the_column_data_and_up_again_starts_empty(conn: Conn) -> None:
    conn.execute(
        "UPDATE recommendations_state SET last_collection_owner_id = gen_random_uuid(),"
        " last_collection_started_at = now() WHERE id = 1"
    )
    migrate(conn, to=1)
    assert columns(conn) == COLUMNS_AT[1]
    migrate(conn, to=3)
    row = conn.execute(
        "SELECT last_collection_started_at, last_collection_owner_id"
        " FROM recommendations_state WHERE id = 1"
    ).fetchone()
    assert row == (None, None)


def test_migrating_to_the_current_version_changes_nothing(conn: Conn) -> None:
    conn.execute("UPDATE recommendations_state SET last_collection_error = 'kept' WHERE id = 1")
    assert migrate(conn, to=3) == 3
    assert migrate(conn) == LATEST
    assert conn.execute("SELECT last_collection_error FROM recommendations_state").fetchall() == [
        ("kept",)
    ]


def test_zero_drops_the_table_and_three_rebuilds_the_single_row(conn: Conn) -> None:
    assert migrate(conn, to=0) == 0
    assert not table_exists(conn)
    assert current_version(conn) == 0

    assert migrate(conn, to=3) == 3
    assert table_exists(conn)
    assert columns(conn) == COLUMNS_AT[3]
    assert ids(conn) == [1]
    row = conn.execute(
        "SELECT last_collected_at, last_collection_error, last_collection_started_at,"
        " last_collection_owner_id FROM recommendations_state WHERE id = 1"
    ).fetchone()
    assert row == (None, None, None, None)


def test_check_constraint_keeps_the_table_to_one_row(conn: Conn) -> None:
    with pytest.raises(errors.CheckViolation):
        conn.execute("INSERT INTO recommendations_state (id) VALUES (2)")
    # The default id is 1, which is taken: the primary key refuses a second row too.
    with pytest.raises(errors.UniqueViolation):
        conn.execute("INSERT INTO recommendations_state DEFAULT VALUES")
    assert ids(conn) == [1]


def test_first_migration_seeds_the_row_once(conn: Conn) -> None:
    # Re-running step 1's up SQL (its INSERT is ON CONFLICT DO NOTHING) keeps one row.
    conn.execute(MIGRATIONS[0].up)
    assert ids(conn) == [1]


@pytest.mark.parametrize("to", [-1, LATEST + 1, 99])
def test_out_of_range_version_is_refused_before_any_change(conn: Conn, to: int) -> None:
    with pytest.raises(ValueError, match=rf"0\.\.{LATEST}, got {to}"):
        migrate(conn, to=to)
    assert current_version(conn) == LATEST
    assert columns(conn) == COLUMNS_AT[3]


def test_a_failed_step_rolls_back_and_keeps_the_version(conn: Conn) -> None:
    # Something outside the migrations depends on the owner column: its down step fails.
    conn.execute(
        "CREATE VIEW owners AS SELECT last_collection_owner_id FROM recommendations_state"
    )
    with pytest.raises(errors.DependentObjectsStillExist):
        migrate(conn, to=2)
    assert current_version(conn) == 3
    assert owner_column(conn) is not None
