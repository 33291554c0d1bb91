"""The reference schema's migrations, up and down, on a real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import errors

from racesim.store import LATEST
from racesim.store.migrate import MIGRATIONS, current_version, migrate

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


def tables_named(conn: Conn, name: str) -> list[str]:
    """Every schema holding a table called ``name``."""
    rows = conn.execute(
        "SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relname = %s AND c.relkind = 'r' ORDER BY 1",
        (name,),
    ).fetchall()
    return [r[0] for r in rows]


@pytest.fixture
def plain(conninfo: str) -> Iterator[Conn]:
    """A session with the default search_path, as ``racesim.engine.prepare.prepare`` migrates on.

    The clock session of the ``conn`` fixture must migrate the same tables: see the
    last test.
    """
    with psycopg.connect(conninfo, autocommit=True) as c:
        yield c


def test_fresh_database_is_at_the_latest_version(plain: Conn) -> None:
    assert LATEST == len(MIGRATIONS) == 3
    assert [m.version for m in MIGRATIONS] == [1, 2, 3]
    assert current_version(plain) == LATEST
    assert columns(plain) == COLUMNS_AT[3]
    assert ids(plain) == [1]


def test_owner_column_goes_up_and_down(plain: Conn) -> None:
    assert migrate(plain, to=2) == 2
    assert current_version(plain) == 2
    assert owner_column(plain) is None
    assert columns(plain) == COLUMNS_AT[2]

    assert migrate(plain, to=3) == 3
    # Nullable UUID, no default: existing rows get NULL, as the reference's 000048.
    assert owner_column(plain) == ("uuid", "YES", None)
    assert columns(plain) == COLUMNS_AT[3]
    indexes = plain.execute(
        "SELECT indexdef FROM pg_indexes WHERE tablename = 'recommendations_state'"
    ).fetchall()
    assert not any("owner" in r[0] for r in indexes), indexes

    assert migrate(plain, to=2) == 2
    assert owner_column(plain) is None
    assert current_version(plain) == 2


def test_down_step_drops_the_column_data_and_up_again_starts_empty(plain: Conn) -> None:
    plain.execute(
        "UPDATE recommendations_state SET last_collection_owner_id = gen_random_uuid(),"
        " last_collection_started_at = now() WHERE id = 1"
    )
    migrate(plain, to=1)
    assert columns(plain) == COLUMNS_AT[1]
    migrate(plain, to=3)
    row = plain.execute(
        "SELECT last_collection_started_at, last_collection_owner_id"
        " FROM recommendations_state WHERE id = 1"
    ).fetchone()
    assert row == (None, None)


def test_migrating_to_the_current_version_changes_nothing(plain: Conn) -> None:
    plain.execute("UPDATE recommendations_state SET last_collection_error = 'kept' WHERE id = 1")
    assert migrate(plain, to=3) == 3
    assert migrate(plain) == LATEST
    assert plain.execute("SELECT last_collection_error FROM recommendations_state").fetchall() == [
        ("kept",)
    ]


def test_zero_drops_the_table_and_three_rebuilds_the_single_row(plain: Conn) -> None:
    assert migrate(plain, to=0) == 0
    assert not table_exists(plain)
    assert current_version(plain) == 0

    assert migrate(plain, to=3) == 3
    assert table_exists(plain)
    assert columns(plain) == COLUMNS_AT[3]
    assert ids(plain) == [1]
    row = plain.execute(
        "SELECT last_collected_at, last_collection_error, last_collection_started_at,"
        " last_collection_owner_id FROM recommendations_state WHERE id = 1"
    ).fetchone()
    assert row == (None, None, None, None)


def test_check_constraint_keeps_the_table_to_one_row(plain: Conn) -> None:
    with pytest.raises(errors.CheckViolation):
        plain.execute("INSERT INTO recommendations_state (id) VALUES (2)")
    # The default id is 1, which is taken: the primary key refuses a second row too.
    with pytest.raises(errors.UniqueViolation):
        plain.execute("INSERT INTO recommendations_state DEFAULT VALUES")
    assert ids(plain) == [1]


def test_first_migration_seeds_the_row_once(plain: Conn) -> None:
    # Re-running step 1's up SQL (its INSERT is ON CONFLICT DO NOTHING) keeps one row.
    plain.execute(MIGRATIONS[0].up)
    assert ids(plain) == [1]


@pytest.mark.parametrize("to", [-1, LATEST + 1, 99])
def test_out_of_range_version_is_refused_before_any_change(plain: Conn, to: int) -> None:
    with pytest.raises(ValueError, match=rf"0\.\.{LATEST}, got {to}"):
        migrate(plain, to=to)
    assert current_version(plain) == LATEST
    assert columns(plain) == COLUMNS_AT[3]


def test_a_failed_step_rolls_back_and_keeps_the_version(plain: Conn) -> None:
    # Something outside the migrations depends on the owner column: its down step fails.
    plain.execute(
        "CREATE VIEW owners AS SELECT last_collection_owner_id FROM recommendations_state"
    )
    with pytest.raises(errors.DependentObjectsStillExist):
        migrate(plain, to=2)
    assert current_version(plain) == 3
    assert owner_column(plain) is not None


def test_every_table_lives_in_public(plain: Conn) -> None:
    for name in ("recommendations_state", "racesim_schema_version"):
        assert tables_named(plain, name) == ["public"]


def test_migrate_on_a_clock_session_migrates_the_public_table(conn: Conn) -> None:
    migrate(conn, to=2)
    assert tables_named(conn, "recommendations_state") == ["public"]
    assert tables_named(conn, "racesim_schema_version") == ["public"]
    assert owner_column(conn) is None
