"""Exhaustive search with sleep sets, sharding and PCT."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from racesim.engine.pool import SessionPool
from racesim.explore.drive import Driven
from racesim.explore.run import ExploreOptions, explore
from racesim.explore.search import Subtree, access, exhaustive, independent, pct, split
from racesim.model.plan import Actor
from racesim.provision.databases import Databases
from racesim.report.text import Reporter
from racesim.store.system import CONFIGS, SYSTEM


def test_token_holds_on_every_cron_user_schedule(
    racesim_databases: Databases, tmp_path: Path
) -> None:
    text = io.StringIO()
    result = explore(
        ExploreOptions(store="token", strategy="exhaustive", config="cron+user", out=tmp_path),
        racesim_databases,
        Reporter(text),
    )
    assert result.complete and not result.found
    assert f"exhaustive: all {result.schedules} distinct schedules explored, none violates" in (
        text.getvalue()
    )
    assert result.schedules == 125 and result.skipped > 0
    # by default each interleaving (40) also with one move to the stale marker's
    # boundary, right after a step that set a marker
    assert "exhaustive: 85 schedule(s) with a clock move, 0 with an added fault" in text.getvalue()


def test_legacy_cron_user_breaks_exhaustively(racesim_databases: Databases, tmp_path: Path) -> None:
    result = explore(
        ExploreOptions(store="legacy", strategy="exhaustive", config="cron+user", out=tmp_path),
        racesim_databases,
        Reporter(io.StringIO()),
    )
    # cron's deferred clear wipes the user's marker (and, where the cron run marked
    # first, the user's mark-and-clear wipes cron's): one invariant, one cause
    # (the clear also takes the user's banner down: a second counterexample)
    assert set(result.found) == {"no-foreign-clear/cleared-by-clear", "banner-stays-up/gone"}
    assert result.found["no-foreign-clear/cleared-by-clear"].steps <= 6


def test_token_duplicate_delivery_is_reported(racesim_databases: Databases, tmp_path: Path) -> None:
    result = explore(
        ExploreOptions(store="token", strategy="exhaustive", config="user-async+2bg", out=tmp_path),
        racesim_databases,
        Reporter(io.StringIO()),
    )
    v = result.found["no-foreign-clear/cleared-by-clear"].violations[0]
    assert set(v.runs) == {"first", "second"}  # one copy of the invoke clears the other's


@pytest.mark.parametrize("config", ["cron+user", "cron+cron", "user-async+2bg"])
def test_sleep_sets_skip_only_reorderings(config: str) -> None:
    full = exhaustive(CONFIGS[config].actors, "model", reduce=False, system=SYSTEM)
    reduced = exhaustive(CONFIGS[config].actors, "model", system=SYSTEM)
    assert full.complete and reduced.complete
    assert reduced.explored < full.explored and reduced.skipped > 0
    assert set(reduced.found) == set(full.found)


def test_shards_together_find_what_one_finds() -> None:
    whole = exhaustive(CONFIGS["user-async+2bg"].actors, "model", system=SYSTEM)
    parts = [
        exhaustive(CONFIGS["user-async+2bg"].actors, "model", shard=(k, 3), system=SYSTEM)
        for k in (1, 2, 3)
    ]
    assert all(p.complete for p in parts)
    assert sum(p.explored for p in parts) >= whole.explored
    assert set().union(*(p.found for p in parts)) == set(whole.found)
    assert sum(bool(p.explored) for p in parts) >= 2


def test_independence() -> None:
    collect, freshness = (
        access("a", "collect", False, SYSTEM),
        access("b", "get_freshness", False, SYSTEM),
    )
    assert independent(collect, freshness)
    assert not independent(collect, access("b", "mark", False, SYSTEM))  # the checks see a mark
    assert not independent(access("a", "mark", False, SYSTEM), freshness)
    assert not independent(
        access("a", "release_task_lock", False, SYSTEM), access("b", "crash", False, SYSTEM)
    )
    assert not independent(collect, access("b", "get_freshness", True, SYSTEM))  # checks see an end


def test_pct_is_seeded() -> None:
    a = pct(CONFIGS["mixed"].actors, "model", seed=5, schedules=30, system=SYSTEM)
    b = pct(CONFIGS["mixed"].actors, "model", seed=5, schedules=30, system=SYSTEM)
    assert a.explored == b.explored == 30 and not a.complete
    assert {k: v.plan for k, v in a.found.items()} == {k: v.plan for k, v in b.found.items()}


# The original race's cast: a cron run, a user's refresh and the next cron run.
CRON_USER_CRON = (
    Actor("cron", "cron"),
    Actor("user", "refresh", {"mode": "sync"}),
    Actor("cron2", "cron"),
)
SHARDS = 4


@pytest.mark.parametrize("shard", range(1, SHARDS + 1))
def test_token_holds_on_every_cron_cron_schedule(shard: int, racesim_databases: Databases) -> None:
    """Exhaustive proof on PostgreSQL, split into shards that xdist workers share.

    (Cron, user, cron has 11,644 distinct schedules once no step the checks see is
    reordered: minutes on PostgreSQL; its shards are counted on the model below.)"""
    name = racesim_databases.create()
    try:
        with SessionPool(racesim_databases.server.conninfo(name), "token", SYSTEM) as pool:
            actors = CONFIGS["cron+cron"].actors
            result = exhaustive(actors, "token", pool=pool, shard=(shard, SHARDS), system=SYSTEM)
    finally:
        racesim_databases.drop(name)
    assert result.complete and result.explored > 5
    assert not result.found


def test_shards_cover_every_schedule_of_the_whole() -> None:
    parts = [
        exhaustive(CRON_USER_CRON, "model", shard=(k, SHARDS), system=SYSTEM)
        for k in range(1, SHARDS + 1)
    ]
    assert all(p.complete for p in parts)
    # disjoint shards: together exactly the schedules one search runs
    assert sum(p.explored for p in parts) == 11644


def _ran(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, ...]]:
    """Record the schedule (its steps' actors) of every run a search counts."""
    import racesim.explore.search as search

    ran: list[tuple[str, ...]] = []
    keep = search._keep

    def spy(result: search.SearchResult, driven: Driven) -> None:
        ran.append(tuple(getattr(e, "actor", "clock") for e in driven.plan.entries))
        keep(result, driven)

    monkeypatch.setattr(search, "_keep", spy)
    return ran


@pytest.mark.parametrize(
    ("config", "nodes"), [("cron+user", 6), ("user-async+2bg", 16), ("cron+cron", 40)]
)
def test_subtrees_are_exactly_the_whole_search(
    monkeypatch: pytest.MonkeyPatch, config: str, nodes: int
) -> None:
    """The split's own schedules and each subtree's, explored apart (sent as plain
    values, as to another process), are the schedules of one whole search, each once,
    with the same sleep-set skips."""
    ran = _ran(monkeypatch)
    actors = CONFIGS[config].actors
    whole = exhaustive(actors, "model", system=SYSTEM)
    every = sorted(ran)
    ran.clear()
    top, subtrees = split(actors, "model", nodes, system=SYSTEM)
    assert top.complete and len(subtrees) >= nodes
    parts = [
        exhaustive(actors, "model", system=SYSTEM, subtree=Subtree.from_plain(s.plain()))
        for s in subtrees
    ]
    assert all(p.complete for p in parts)
    assert sorted(ran) == every and len(set(ran)) == len(ran)
    assert top.explored + sum(p.explored for p in parts) == whole.explored
    assert top.skipped + sum(p.skipped for p in parts) == whole.skipped
    assert set(top.found).union(*(p.found for p in parts)) == set(whole.found)


def test_a_split_deepens_until_it_has_enough_nodes() -> None:
    actors = CONFIGS["cron+user"].actors
    few = split(actors, "model", 2, system=SYSTEM)[1]
    many = split(actors, "model", 20, system=SYSTEM)[1]
    assert {len(s.frames) for s in few} == {1} and len(few) == 2
    assert len(many) >= 20 and len({len(s.frames) for s in many}) == 1
    # more nodes than the tree has at any depth: it stops where deeper gives no more
    top, most = split(actors, "model", 1000, system=SYSTEM)
    assert top.complete and 20 <= len(most) < 40
