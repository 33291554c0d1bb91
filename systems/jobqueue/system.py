"""The job queue as a racesim ``System``: everything the harness needs to run it.

Two variants (``naive``, ``skiplocked``) on one schema, two programs
(``producer``, ``worker``), three invariants, the lease as the time window
that clock moves aim at, and how jobs and results are shown.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from racesim.model.plan import Actor
from racesim.system import Config, Footprint, RunKind, Session, Show, System, Variant, Window
from racesim.systems.jobqueue import schema, watch
from racesim.systems.jobqueue.interface import LEASE, QueueStore
from racesim.systems.jobqueue.invariants import INVARIANTS, QueueChecker
from racesim.systems.jobqueue.naive import NaiveStore
from racesim.systems.jobqueue.programs import FAULTS, PROGRAMS
from racesim.systems.jobqueue.skiplocked import SkipLockedStore

JOBS = frozenset({"jobs"})


def _opener(store: Callable[[Any, str], QueueStore]) -> Callable[[Session], QueueStore]:
    def open_store(session: Session) -> QueueStore:
        assert session.conn is not None
        return store(session.conn, session.actor)

    return open_store


def _variant(name: str, store: Callable[[Any, str], QueueStore]) -> Variant:
    return Variant(name, open=_opener(store), watch=watch.read, reset=schema.reset)


def _lease_start(jobs: watch.Jobs | None) -> datetime | None:
    """When the first lease still on a running job began: its boundary is where to aim
    (None before the jobs were first read, or while no job is running)."""
    ends = [
        j.lease_until for j in jobs or () if j.status == "running" and j.lease_until is not None
    ]
    return min(ends) - LEASE if ends else None


def _prepare(conn: Any) -> None:
    schema.migrate(conn)


def _checks(actors: tuple[Actor, ...]) -> QueueChecker:
    return QueueChecker(actors)


PRODUCER = Actor("producer", "producer", {"jobs": 1})
KINDS = (
    RunKind("producer", "producer", prefix="producer", options={"jobs": 1}),
    RunKind("worker", "worker", prefix="w", options={"jobs": 1}, faults=FAULTS),
)


def _worker(name: str, jobs: int = 1, faults: frozenset[str] = frozenset()) -> Actor:
    return Actor(name, "worker", {"jobs": jobs}, faults)


CONFIGS = {
    "2workers": Config(
        "one job, two workers: the double claim",
        actors=(PRODUCER, _worker("w1"), _worker("w2")),
        faults={"w1": FAULTS, "w2": FAULTS},
    ),
    "crash": Config(
        "one job; the first worker crashes holding it, two more come after",
        actors=(
            PRODUCER,
            _worker("w1", faults=frozenset(FAULTS)),
            _worker("w2"),
            _worker("w3"),
        ),
    ),
    "2jobs": Config(
        "two jobs, two workers that each take two",
        actors=(Actor("producer", "producer", {"jobs": 2}), _worker("w1", 2), _worker("w2", 2)),
        faults={"w1": FAULTS, "w2": FAULTS},
    ),
}

SYSTEM = System(
    name="jobqueue",
    variants=(_variant("naive", NaiveStore), _variant("skiplocked", SkipLockedStore)),
    programs=PROGRAMS,
    invariants=_checks,
    invariant_names=INVARIANTS,
    prepare=_prepare,
    footprints={
        "enqueue": Footprint(writes=JOBS),
        "find": Footprint(reads=JOBS),
        "claim": Footprint(reads=JOBS, writes=JOBS),
        "process": Footprint(reads=JOBS, writes=JOBS),
        "crash": Footprint(),
        "begin": Footprint(),
        "lock_first": Footprint(writes=JOBS),
        "commit": Footprint(writes=JOBS),
        "rollback": Footprint(writes=JOBS),
    },
    faults=FAULTS,
    run_kinds=KINDS,
    configs=CONFIGS,
    defaults={"hypothesis": "2workers", "exhaustive": "2workers", "pct": "2jobs"},
    windows=(Window(LEASE, since=_lease_start, name="lease"),),
    show=Show(
        value=watch.show_result,
        state=watch.show_state,
        state_json=watch.state_json,
        state_key="jobs",
    ),
    direct_calls=True,
    # The checks follow these calls' results and read no watched state.
    invariant_reads=frozenset({"enqueue", "find", "claim", "process"}),
)
