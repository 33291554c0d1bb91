"""Random sequential histories: ``token`` on PostgreSQL against the in-memory ``model``,
and ``legacy`` against the model, differing only where the reference page says.

One database serves every example; between examples its row goes back to NULLs,
the advisory locks are released and the virtual clock returns to ``EPOCH``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from racesim.engine.clock import EPOCH, VirtualClock
from racesim.engine.sessions import open_session
from racesim.provision.databases import Databases
from racesim.provision.provide import Server
from racesim.store import (
    STALE_AFTER,
    LegacyStore,
    MarkerStore,
    ModelDatabase,
    StoreInputError,
    TokenStore,
    seeded_tokens,
    task_lock_key,
)

Conn = psycopg.Connection[Any]
State = tuple[datetime | None, str | None, datetime | None, str | None]
"""(started_at, owner, collected_at, error)."""

CALLERS = 3
KEY = task_lock_key("recommendations")
FOREIGN = str(uuid.UUID(int=0xF0E1_D2C3, version=4))  # a well-formed token nobody issued
MICRO = timedelta(microseconds=1)
SEQUENCES = settings(max_examples=75, deadline=None, database=None)


# -- operations ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Op:
    """One step of a history: ``kind`` by ``caller``; ``arg`` depends on the kind.

    clear: which token ("own", "issued:<n>", "empty", "foreign", "garbage");
    error: the message; advance: a timedelta; edge: microseconds past the window's end.
    """

    kind: str
    caller: int = 0
    arg: Any = None


_minutes = timedelta(minutes=1)
DELTAS = st.one_of(
    st.sampled_from(
        [
            timedelta(0),
            MICRO,
            timedelta(seconds=1),
            timedelta(minutes=4, seconds=59),
            STALE_AFTER - MICRO,
            STALE_AFTER,
            STALE_AFTER + MICRO,
            STALE_AFTER + timedelta(seconds=1),
            6 * _minutes,
        ]
    ),
    st.integers(0, 7 * 60 * 1_000_000).map(lambda us: timedelta(microseconds=us)),
)
TOKENS = st.one_of(
    st.sampled_from(["own", "empty", "foreign", "garbage"]),
    st.integers(0, 20).map(lambda n: f"issued:{n}"),
)
callers = st.integers(0, CALLERS - 1)
MARK = st.builds(Op, st.just("mark"), callers)
CLEAR = st.builds(Op, st.just("clear"), callers, TOKENS)
OPS = st.one_of(
    MARK,
    MARK,  # listed twice: marks and clears are what the histories are about
    CLEAR,
    CLEAR,
    st.builds(Op, st.just("error"), callers, st.sampled_from(["boom", "timeout"])),
    st.builds(Op, st.just("upsert"), callers),
    st.builds(Op, st.just("freshness"), callers),
    st.builds(Op, st.just("advance"), arg=DELTAS),
    st.builds(Op, st.just("edge"), arg=st.sampled_from([-1, 0, 1])),
    st.builds(Op, st.just("lock"), callers),
    st.builds(Op, st.just("unlock"), callers),
)
HISTORIES = st.lists(OPS, min_size=8, max_size=40)


# -- the database shared by every example -------------------------------------------------


@dataclass
class Rig:
    admin: Conn
    sessions: list[Conn]

    def reset(self) -> VirtualClock:
        self.admin.execute(
            "UPDATE recommendations_state SET last_collected_at = NULL,"
            " last_collection_error = NULL, last_collection_started_at = NULL,"
            " last_collection_owner_id = NULL WHERE id = 1"
        )
        for session in self.sessions:
            session.execute("SELECT pg_advisory_unlock_all()")
        return VirtualClock(EPOCH, self.admin)

    def state(self) -> State:
        """(started_at, owner, collected_at, error) as the database holds them."""
        row = self.admin.execute(
            "SELECT last_collection_started_at, last_collection_owner_id::text,"
            " last_collected_at, last_collection_error FROM recommendations_state WHERE id = 1"
        ).fetchone()
        assert row is not None
        return row[0], row[1], row[2], row[3]


@pytest.fixture(scope="module")
def rig(pg_server: Server, databases: Databases) -> Iterator[Rig]:
    name = databases.create()
    conninfo = pg_server.conninfo(name)
    admin = open_session(conninfo)
    sessions = [open_session(conninfo) for _ in range(CALLERS)]
    try:
        yield Rig(admin, sessions)
    finally:
        for conn in [admin, *sessions]:
            conn.close()
        databases.drop(name)


def model_state(db: ModelDatabase) -> State:
    return db.started_at, db.owner, db.collected_at, db.error


# -- running one step ---------------------------------------------------------------------


def outcome(call: Callable[[], Any]) -> tuple[str, Any]:
    """("ok", value) or ("refused", message) for a StoreInputError; anything else raises."""
    try:
        return "ok", call()
    except StoreInputError as exc:
        return "refused", str(exc)


@dataclass
class Tokens:
    """The tokens a history has seen, to pick clear's argument from."""

    own: list[str]
    issued: list[str]

    def pick(self, caller: int, choice: str) -> str:
        if choice == "own":
            return self.own[caller]  # whatever this caller's last mark returned
        if choice == "empty":
            return ""
        if choice == "foreign":
            return FOREIGN
        if choice == "garbage":
            return "not-a-uuid"
        n = int(choice.removeprefix("issued:"))
        return self.issued[n % len(self.issued)] if self.issued else ""


def step(op: Op, store: MarkerStore, token: str) -> tuple[str, Any]:
    """Run ``op`` on ``store``; ``token`` is clear's already-picked argument."""
    if op.kind == "mark":
        return outcome(store.mark)
    if op.kind == "clear":
        return outcome(lambda: store.clear(token))
    if op.kind == "error":
        return outcome(lambda: store.set_collection_error(op.arg))
    if op.kind == "upsert":
        return outcome(store.upsert_recommendations)
    if op.kind == "freshness":
        return outcome(store.get_freshness)
    if op.kind == "lock":
        return outcome(lambda: store.try_task_lock(KEY))
    if op.kind == "unlock":
        return outcome(lambda: store.release_task_lock(KEY))
    raise AssertionError(f"not a store step: {op}")


def move_clock(op: Op, clock: VirtualClock, model: ModelDatabase) -> None:
    if op.kind == "advance":
        clock.advance(op.arg)
    else:  # edge: just before, at, or just after the current marker's window ends
        if model.started_at is None:
            return
        target = model.started_at + STALE_AFTER + op.arg * MICRO
        if target >= clock.now():
            clock.set(target)


def remember(op: Op, result: tuple[str, Any], tokens: Tokens) -> None:
    if op.kind == "mark" and result[0] == "ok":
        tokens.own[op.caller] = result[1].token
        if result[1].ok:
            tokens.issued.append(result[1].token)


# -- token on PostgreSQL == model ---------------------------------------------------------


@SEQUENCES
@given(seed=st.integers(0, 2**32), history=HISTORIES)
def test_token_store_matches_the_model(rig: Rig, seed: int, history: list[Op]) -> None:
    clock = rig.reset()
    model_db = ModelDatabase(now=clock.now)
    pg: list[MarkerStore] = [
        TokenStore(conn, seeded_tokens(seed + i)) for i, conn in enumerate(rig.sessions)
    ]
    model: list[MarkerStore] = [model_db.session(seeded_tokens(seed + i)) for i in range(CALLERS)]
    tokens = Tokens(own=[""] * CALLERS, issued=[])
    for n, op in enumerate(history):
        if op.kind in ("advance", "edge"):
            move_clock(op, clock, model_db)
        else:
            token = tokens.pick(op.caller, op.arg) if op.kind == "clear" else ""
            got = step(op, pg[op.caller], token)
            want = step(op, model[op.caller], token)
            assert got == want, f"step {n}: {op}"
            remember(op, want, tokens)
        assert rig.state() == model_state(model_db), f"after step {n}: {op}"
    event(f"marks granted: {min(len(tokens.issued), 3)}+")
    event(f"steps: {len(history) // 10 * 10}+")


# -- legacy differs from the model only by its clear and its set_collection_error ----------


@SEQUENCES
@given(seed=st.integers(0, 2**32), history=HISTORIES)
def test_legacy_differs_from_the_model_only_where_the_reference_says(
    rig: Rig, seed: int, history: list[Op]
) -> None:
    clock = rig.reset()
    model_db = ModelDatabase(now=clock.now)
    legacy: list[MarkerStore] = [LegacyStore(conn) for conn in rig.sessions]
    model: list[MarkerStore] = [model_db.session(seeded_tokens(seed + i)) for i in range(CALLERS)]
    tokens = Tokens(own=[""] * CALLERS, issued=[])
    divergences = 0
    for n, op in enumerate(history):
        before = rig.state()[0] != model_db.started_at
        if op.kind in ("advance", "edge"):
            move_clock(op, clock, model_db)
            got: tuple[str, Any] = ("ok", None)
            want: tuple[str, Any] = ("ok", None)
        else:
            token = tokens.pick(op.caller, op.arg) if op.kind == "clear" else ""
            got = step(op, legacy[op.caller], token)
            want = step(op, model[op.caller], token)
            remember(op, want, tokens)
        started, owner, collected, error = rig.state()
        after = started != model_db.started_at
        where = f"step {n}: {op}"

        # Columns other than the marker never differ, nor do the advisory locks.
        assert owner is None, where  # legacy never writes the owner column
        assert (collected, error) == (model_db.collected_at, model_db.error), where
        if op.kind in ("lock", "unlock", "upsert"):
            assert got == want, where
        if op.kind == "freshness":
            assert got[1].collected_at == want[1].collected_at, where
            assert got[1].error == want[1].error, where
            assert (got[1].started_at == want[1].started_at) == (not before), where
        # Legacy never refuses input: its clear ignores the token.
        assert got[0] == "ok", where
        if op.kind == "mark" and not before:
            # Same marker, same clock: the same answer (legacy has no token to give).
            assert got[1].ok == want[1].ok, where
            assert got[1].token == "", where

        if after and not before:
            divergences += 1
            assert op.kind in ("clear", "error"), f"{where}: diverged by a {op.kind}"
            # Legacy wiped the marker; the model kept it ...
            assert started is None and model_db.started_at is not None, where
            if op.kind == "clear":
                # ... because its clear refused the token or the token was not the owner's.
                assert want[0] == "refused" or token != model_db.owner, where
    event(f"legacy diverged from the model: {'yes' if divergences else 'no'}")


def test_legacy_divergence_is_reachable(rig: Rig) -> None:
    """The property above is not vacuous: a foreign clear does make legacy diverge."""
    clock = rig.reset()
    model_db = ModelDatabase(now=clock.now)
    holder, other = model_db.session(seeded_tokens(1)), model_db.session(seeded_tokens(2))
    legacy_holder, legacy_other = LegacyStore(rig.sessions[0]), LegacyStore(rig.sessions[1])
    assert holder.mark().ok and legacy_holder.mark().ok
    with pytest.raises(StoreInputError):
        other.clear("")
    legacy_other.clear("")
    assert model_db.started_at == EPOCH
    assert rig.state()[0] is None
