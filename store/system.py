"""The reference system on racesim's interface: the collection-in-flight marker.

Three variants: ``legacy`` (the bare flag, schema version 2), ``token`` (the
owner-token fix, schema version 3) and ``model`` (the fix in memory, the
sequential model the token store is checked against). The watched state is the
marker row; the invariants are no-foreign-clear and banner-stays-up.

>>> from racesim.store.system import SYSTEM        # doctest: +SKIP
>>> SYSTEM.variant_names
('legacy', 'token', 'model')
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import psycopg

from racesim.model.plan import Actor
from racesim.store.callers import FAULTS, PROGRAMS
from racesim.store.interface import STALE_AFTER, seeded_tokens
from racesim.store.invariants import NAMES, Marker, MarkerChecks
from racesim.store.legacy import LegacyStore
from racesim.store.migrate import LATEST, migrate
from racesim.store.model import ModelDatabase
from racesim.store.show import SHOW
from racesim.store.token import TokenStore
from racesim.system import (
    Config,
    Followers,
    Footprint,
    RunKind,
    Session,
    System,
    Variant,
    Window,
    sql_reset,
    watch_sql,
)

Connection = psycopg.Connection[Any]

SNAPSHOT = (
    "SELECT last_collection_started_at, last_collection_owner_id::text, last_collected_at,"
    " last_collection_error FROM recommendations_state WHERE id = 1"
)
SNAPSHOT_NO_OWNER = (
    "SELECT last_collection_started_at, NULL::text, last_collected_at,"
    " last_collection_error FROM recommendations_state WHERE id = 1"
)
"""The monitor's read of the marker row after every event (schema 3, and 2 for legacy)."""

RESET = (
    "UPDATE recommendations_state SET last_collected_at = NULL, last_collection_error = NULL,"
    " last_collection_started_at = NULL, last_collection_owner_id = NULL WHERE id = 1"
)
RESET_NO_OWNER = (
    "UPDATE recommendations_state SET last_collected_at = NULL, last_collection_error = NULL,"
    " last_collection_started_at = NULL WHERE id = 1"
)


def _marker(row: tuple[Any, ...] | None) -> Marker:
    return Marker(None) if row is None else Marker(row[0], row[1], row[2], row[3])


def _model_marker(db: ModelDatabase) -> Marker:
    return Marker(db.started_at, db.owner, db.collected_at, db.error)


def _to(version: int) -> Callable[[Connection], None]:
    def prepare(conn: Connection) -> None:
        migrate(conn, to=version)

    return prepare


def _legacy(s: Session) -> LegacyStore:
    assert s.conn is not None
    return LegacyStore(s.conn)


def _token(s: Session) -> TokenStore:
    assert s.conn is not None
    return TokenStore(s.conn, seeded_tokens(s.seed))


def _model(s: Session) -> Any:
    return s.world.session(seeded_tokens(s.seed))


def _world(now: Callable[[], datetime]) -> ModelDatabase:
    return ModelDatabase(now=now)


VARIANTS = (
    Variant(
        "legacy",
        open=_legacy,
        watch=watch_sql(SNAPSHOT_NO_OWNER, _marker),
        prepare=_to(2),
        reset=sql_reset(RESET_NO_OWNER),
    ),
    Variant(
        "token",
        open=_token,
        watch=watch_sql(SNAPSHOT, _marker),
        prepare=_to(3),
        reset=sql_reset(RESET),
        follows_model=True,
    ),
    Variant(
        "model",
        open=_model,
        watch=_model_marker,
        database=False,
        world=_world,
        follows_model=True,
    ),
)

_ROW, _LOCK, _DELIVERY, _TXN = "row", "lock", "delivery", "advisory-xact"
FOOTPRINTS = {
    "get_freshness": Footprint(reads=frozenset({_ROW})),
    "mark": Footprint(writes=frozenset({_ROW})),
    "clear": Footprint(writes=frozenset({_ROW})),
    "set_collection_error": Footprint(writes=frozenset({_ROW})),
    "upsert_recommendations": Footprint(writes=frozenset({_ROW})),
    "try_task_lock": Footprint(writes=frozenset({_LOCK})),
    "release_task_lock": Footprint(writes=frozenset({_LOCK})),
    "crash": Footprint(writes=frozenset({_LOCK})),  # a session's advisory locks end with it
    "invoke": Footprint(writes=frozenset({_DELIVERY})),
    "receive": Footprint(reads=frozenset({_DELIVERY})),
    "collect": Footprint(),
    "begin": Footprint(),
    "lock_row": Footprint(writes=frozenset({_ROW})),
    "lock_advisory": Footprint(writes=frozenset({_TXN})),
    "commit": Footprint(writes=frozenset({_ROW, _TXN})),
    "rollback": Footprint(writes=frozenset({_ROW, _TXN})),
}
"""What each call reads and writes: the state row, the task's advisory lock, the
platform's delivery of the invoke, and a maintenance transaction's own lock."""
INVARIANT_READS = frozenset({_ROW, "mark", "invoke", "try_task_lock", "clear"})
"""What the invariants read: the marker row (the watched state), and the events of
the calls whose results their record follows (a mark, an invoke handing the token
on, a delegate's lock, a clear). ``collect`` is work of the run's own: it touches
nothing and no check follows it."""

CRON = RunKind("cron", "cron", "cron", faults=("persist_fails", "crash_before_clear"))
REFRESH_SYNC = RunKind(
    "refresh-sync", "refresh", "user", {"mode": "sync"}, ("persist_fails", "crash_before_clear")
)
BACKGROUND = RunKind(
    "background",
    "background",
    "",
    faults=("lock_check_fails", "persist_fails", "crash_before_clear"),
)


def _async(deliveries: int) -> RunKind:
    return RunKind(
        "refresh-async",
        "refresh",
        "user",
        {"mode": "async"},
        ("invoke_fails",),
        Followers(BACKGROUND, deliveries, "invoked_by", "-bg"),
    )


KINDS = (CRON, REFRESH_SYNC, _async(2))
"""What a drawn run can be; the first shrinks best (a cron run has no get_freshness step).
An async refresh gets 0 to 2 deliveries (two is the platform's duplicate delivery)."""
PAGE = RunKind("page", "poll", "page", {"polls": 3})

_BG = "background"
ROSTER = (
    Actor("cron", "cron"),
    Actor("cron2", "cron"),
    Actor("user", "refresh", {"mode": "sync"}),
    Actor("user2", "refresh", {"mode": "async"}),
    Actor("first", _BG, {"invoked_by": "user2"}),
    Actor("second", _BG, {"invoked_by": "user2"}),
    Actor("page", "poll", {"polls": 3}),
)
"""Every run a state machine may start, in the order the engine opens their sessions."""

_COLLECTING = ("persist_fails", "crash_before_clear")
CONFIGS = {
    "cron+user": Config(
        "a cron run and a sync refresh",
        actors=(Actor("cron", "cron"), Actor("user", "refresh", {"mode": "sync"})),
    ),
    "cron+cron": Config("two cron runs", actors=(Actor("cron", "cron"), Actor("cron2", "cron"))),
    "user-async+2bg": Config(
        "an async refresh delivered twice",
        actors=(
            Actor("user", "refresh", {"mode": "async"}),
            Actor("first", _BG, {"invoked_by": "user"}),
            Actor("second", _BG, {"invoked_by": "user"}),
        ),
    ),
    "mixed": Config(
        "cron, a sync refresh, an async refresh delivered twice (one persist fails), the page",
        actors=(
            Actor("cron", "cron"),
            Actor("user", "refresh", {"mode": "sync"}),
            Actor("user2", "refresh", {"mode": "async"}),
            Actor("first", _BG, {"invoked_by": "user2"}),
            Actor("second", _BG, {"invoked_by": "user2"}, frozenset({"persist_fails"})),
            Actor("page", "poll", {"polls": 3}),
        ),
    ),
    "any": Config(
        "1 to 4 drawn runs of cron / refresh (sync or async, 0-2 deliveries), maybe the page",
        kinds=KINDS,
        observers=(PAGE,),
    ),
    "single-delivery": Config(
        "drawn runs as in 'any', but each invoke is delivered at most once: the known"
        " duplicate-delivery clear left out, faults and clock moves hunted",
        kinds=(CRON, REFRESH_SYNC, _async(1)),
        observers=(PAGE,),
    ),
    "roster": Config(
        "every run a state machine may start (two cron, sync and async refresh, two"
        " deliveries, the page)",
        actors=ROSTER,
        faults={
            "cron": _COLLECTING,
            "cron2": _COLLECTING,
            "user": _COLLECTING,
            "user2": ("invoke_fails", *_COLLECTING),
            "first": ("lock_check_fails", *_COLLECTING),
            "second": ("lock_check_fails", *_COLLECTING),
        },
    ),
}
"""Named configurations for ``--config``; the first three are small enough to exhaust."""


def _trigger(actor: Actor) -> str | None:
    source = actor.options.get("invoked_by")
    return str(source) if source is not None else None


def _check_actors(actors: tuple[Actor, ...]) -> list[tuple[Actor, str]]:
    names = {a.name: a for a in actors}
    problems = []
    for a in actors:
        source = a.options.get("invoked_by")
        if source is not None and (
            not isinstance(source, str) or source not in names or names[source].program != "refresh"
        ):
            problems.append((a, f"invoked_by must name a refresh actor, got {str(source)[:40]!r}"))
        if a.program == "background" and source is None:
            problems.append((a, 'a background actor needs invoked_by = "<refresh actor>"'))
    return problems


def _simplify(actor: Actor, actors: tuple[Actor, ...]) -> tuple[Actor, ...]:
    """A refresh nobody is delivered from is a cron run plus a freshness read."""
    if actor.program == "refresh" and not any(
        a.options.get("invoked_by") == actor.name for a in actors
    ):
        return (Actor(actor.name, "cron", {}, frozenset()),)
    return ()


def _prepare(conn: Connection) -> None:
    migrate(conn, to=LATEST)


def _since(state: Any) -> datetime | None:
    return state.started_at if isinstance(state, Marker) else None


SYSTEM = System(
    name="reference",
    variants=VARIANTS,
    programs=PROGRAMS,
    invariants=MarkerChecks.of,
    invariant_names=NAMES,
    prepare=_prepare,
    model="model",
    footprints=FOOTPRINTS,
    invariant_reads=INVARIANT_READS,
    faults=FAULTS,
    run_kinds=KINDS,
    observers=(PAGE,),
    configs=CONFIGS,
    defaults={"exhaustive": "cron+user", "pct": "mixed"},
    windows=(Window(STALE_AFTER, _since, "stale marker"),),
    show=SHOW,
    trigger=_trigger,
    check_actors=_check_actors,
    simplify=_simplify,
    sticky=frozenset({"try_task_lock"}),
    direct_calls=True,
)
"""The reference system: what ``racesim`` tests when no other system is named."""
