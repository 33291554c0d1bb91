"""The engine and the explorers, told in the terms of a system of their own: the
counter of ``racesim.system``'s docstring (tests/counter_system.py).

Two runs each read the counter and write back what they read plus one. The
naive store loses an update when both read before either writes; the atomic
store (``UPDATE counter SET n = n + 1``) holds in every interleaving. The
``memory`` store is the naive one without a server.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from counter_system import COUNTER

from racesim.engine.loop import Options, execute
from racesim.engine.pool import SessionPool
from racesim.explore.run import ExploreOptions, explore
from racesim.explore.search import exhaustive, pct
from racesim.model.plan import Plan, Step
from racesim.provision.databases import Databases
from racesim.provision.provide import Server
from racesim.report.text import Reporter
from racesim.runner import Prepared

TWO = COUNTER.configs["two"].actors
THREE = COUNTER.configs["three"].actors

BOTH_READ_FIRST = Plan(
    TWO,
    (
        Step("b1", "read", "T+0"),
        Step("b2", "read", "T+1"),
        Step("b1", "write", "T+2"),
        Step("b2", "write", "T+3"),
    ),
)
ONE_AFTER_THE_OTHER = Plan(
    TWO,
    (
        Step("b1", "read", "T+0"),
        Step("b1", "write", "T+1"),
        Step("b2", "read", "T+2"),
        Step("b2", "write", "T+3"),
    ),
)


# -- the engine, in memory -----------------------------------------------------


def test_the_engine_records_each_step_with_its_result_and_the_counter_after_it() -> None:
    outcome = execute(ONE_AFTER_THE_OTHER, "memory", system=COUNTER)
    steps = [(e.actor, e.call, e.result, e.state) for e in outcome.history.events]
    assert steps == [
        ("b1", "read", 0, 0),
        ("b1", "write", None, 1),
        ("b2", "read", 1, 1),
        ("b2", "write", None, 2),
    ]
    assert [e.finished for e in outcome.history.events] == [None, "done", None, "done"]
    assert outcome.checker.violations == []


def test_the_engine_reports_the_lost_update_at_the_second_write() -> None:
    outcome = execute(BOTH_READ_FIRST, "memory", system=COUNTER)
    [v] = outcome.checker.violations
    assert (v.invariant, v.actor, v.label) == ("no-lost-update", "b2", "T+3")
    assert v.message == "2 writes, counter 1"
    assert outcome.history.events[-1].state == 1


def test_stop_at_first_ends_the_run_at_the_violation() -> None:
    plan = Plan(THREE, (*BOTH_READ_FIRST.entries, Step("b3", "read"), Step("b3", "write")))
    full = execute(plan, "memory", options=Options(stop_at_first=False), system=COUNTER)
    stopped = execute(plan, "memory", options=Options(stop_at_first=True), system=COUNTER)
    assert len(full.history.events) == 6
    assert len(stopped.history.events) == 4
    assert [v.invariant for v in stopped.checker.violations] == ["no-lost-update"]


# -- the explorers, in memory ----------------------------------------------------


def test_exhaustive_runs_every_interleaving_without_reduction() -> None:
    # two runs of two steps: C(4, 2) = 6 interleavings; 4 of them lose an update
    # (those where both reads come before the second write) and stop there
    result = exhaustive(TWO, "memory", reduce=False, system=COUNTER)
    assert result.complete
    assert result.explored == 6
    assert set(result.found) == {"no-lost-update"}
    assert result.found["no-lost-update"].steps == 4


def test_the_reduction_runs_fewer_schedules_and_finds_the_same() -> None:
    full = exhaustive(THREE, "memory", reduce=False, system=COUNTER)
    reduced = exhaustive(THREE, "memory", reduce=True, system=COUNTER)
    assert full.complete and reduced.complete
    assert reduced.explored <= full.explored
    assert set(reduced.found) == set(full.found) == {"no-lost-update"}


def test_pct_finds_the_lost_update_and_is_seeded() -> None:
    first = pct(TWO, "memory", seed=5, schedules=30, clock=False, system=COUNTER)
    again = pct(TWO, "memory", seed=5, schedules=30, clock=False, system=COUNTER)
    assert first.explored == 30 and not first.complete
    assert set(first.found) == {"no-lost-update"}
    assert first.found["no-lost-update"].plan == again.found["no-lost-update"].plan


# -- on PostgreSQL -----------------------------------------------------------------


@pytest.fixture(scope="module")
def counter_dbs(racesim_server: Server) -> Iterator[Databases]:
    made = Prepared(racesim_server)
    yield made.for_system(COUNTER)
    made.close()


@pytest.fixture
def pools(counter_dbs: Databases) -> Iterator[dict[str, SessionPool]]:
    name = counter_dbs.create()
    conninfo = counter_dbs.server.conninfo(name)
    made = {store: SessionPool(conninfo, store, COUNTER) for store in ("naive", "atomic")}
    try:
        yield made
    finally:
        for pool in made.values():
            pool.close()
        counter_dbs.drop(name)


@pytest.mark.parametrize(("store", "final", "broken"), [("naive", 1, 1), ("atomic", 2, 0)])
def test_both_reads_first_on_a_server(
    pools: dict[str, SessionPool], store: str, final: int, broken: int
) -> None:
    outcome = execute(BOTH_READ_FIRST, store, pool=pools[store], system=COUNTER)
    assert outcome.history.events[-1].state == final
    assert len(outcome.checker.violations) == broken


def test_exhaustive_finds_the_naive_lost_update_and_the_atomic_store_holds(
    pools: dict[str, SessionPool],
) -> None:
    naive = exhaustive(TWO, "naive", pool=pools["naive"], reduce=False, system=COUNTER)
    atomic = exhaustive(TWO, "atomic", pool=pools["atomic"], reduce=False, system=COUNTER)
    assert naive.complete and set(naive.found) == {"no-lost-update"}
    assert atomic.complete and atomic.explored == 6 and atomic.found == {}


def test_pct_finds_the_naive_lost_update_and_the_atomic_store_holds(
    pools: dict[str, SessionPool],
) -> None:
    naive = pct(TWO, "naive", pool=pools["naive"], seed=1, schedules=30, system=COUNTER)
    atomic = pct(TWO, "atomic", pool=pools["atomic"], seed=1, schedules=30, system=COUNTER)
    assert set(naive.found) == {"no-lost-update"}
    assert atomic.explored == 30 and atomic.found == {}


@pytest.mark.parametrize("strategy", ["hypothesis", "exhaustive", "pct"])
def test_explore_saves_the_naive_lost_update_and_the_atomic_store_holds(
    counter_dbs: Databases, tmp_path: Path, strategy: str
) -> None:
    def run(store: str) -> tuple[set[str], str]:
        text = io.StringIO()
        opts = ExploreOptions(
            store=store,
            strategy=strategy,
            system=COUNTER,
            max_examples=60,
            out=tmp_path / store,
            example_db=False,
            seed=2,
        )
        result = explore(opts, counter_dbs, Reporter(text))
        assert not result.flaky, text.getvalue()
        return set(result.found), text.getvalue()

    found, text = run("naive")
    assert found == {"no-lost-update"}, text
    [saved] = (tmp_path / "naive").glob("*.toml")
    assert 'breaks = "no-lost-update"' in saved.read_text()
    found, text = run("atomic")
    assert found == set(), text
    assert not (tmp_path / "atomic").exists() or not list((tmp_path / "atomic").glob("*.toml"))
