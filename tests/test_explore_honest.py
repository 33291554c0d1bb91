"""Exploration that is honest about what it searched: transactions left open by a
stopped run, PCT on short runs, seeds that decide the search, a sound reduction,
every distinct violation saved, disjoint shards."""

from __future__ import annotations

import dataclasses
import importlib
import io
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from racesim.cli.main import main
from racesim.engine.loop import Options
from racesim.errors import EXIT_FOUND
from racesim.explore.drive import Driven
from racesim.explore.run import Explored, ExploreOptions, explore
from racesim.explore.search import access, exhaustive, independent
from racesim.model.history import Event
from racesim.model.plan import Actor
from racesim.model.violation import Violation
from racesim.provision.databases import Databases
from racesim.provision.provide import Server
from racesim.report.text import Reporter
from racesim.runner import Prepared, load_all, run_one
from racesim.store.invariants import MarkerChecks
from racesim.store.system import CONFIGS as REFERENCE_CONFIGS
from racesim.store.system import SYSTEM as REFERENCE
from racesim.systems.jobqueue.system import SYSTEM as JOBQUEUE

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

from txn_systems import LEDGER  # noqa: E402


def _explore(dbs: Databases, out: Path, **kw: object) -> tuple[Explored, str]:
    text = io.StringIO()
    opts = ExploreOptions(out=out, example_db=False, **kw)  # type: ignore[arg-type]
    return explore(opts, dbs, Reporter(text)), text.getvalue()


@pytest.fixture(scope="module")
def ledger_dbs(racesim_server: Server) -> Iterator[Databases]:
    made = Prepared(racesim_server)
    yield made.for_system(LEDGER)
    made.close()


# -- transactions held open across steps ------------------------------------


@pytest.mark.parametrize(
    ("config", "key", "strategy"),
    [("bumps", "no-lost-update", "exhaustive"), ("transfers", "no-deadlock", "pct")],
)
def test_a_stopped_runs_open_transaction_is_ended_before_the_next_reset(
    ledger_dbs: Databases, tmp_path: Path, config: str, key: str, strategy: str
) -> None:
    # Each schedule stops at its first violation with another run's transaction
    # open (holding row locks the next reset's UPDATE needs).
    result, text = _explore(
        ledger_dbs,
        tmp_path,
        store="db",
        strategy=strategy,
        config=config,
        system=LEDGER,
        max_examples=400,
    )
    assert key in result.found, text
    saved = result.files[key].read_text()
    assert f'breaks = "{key}"' in saved
    assert not result.flaky, text


def test_the_cli_finds_the_lost_update_of_a_module_system(
    racesim_server: Server,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # --system module:ATTR is imported from the current folder
    (tmp_path / "txn_systems.py").write_text((HERE / "txn_systems.py").read_text())
    monkeypatch.chdir(tmp_path)
    argv = [
        "explore",
        "--system",
        "txn_systems:LEDGER",
        "--store",
        "db",
        "--strategy",
        "hypothesis",
        "--config",
        "bumps",
        "--max-examples",
        "100",
        "--seed",
        "3",
        "--out",
        "out",
        "--pg",
        "dsn",
        "--dsn",
        racesim_server.conninfo("postgres"),
    ]
    status = main(argv)
    out = capsys.readouterr()
    assert status == EXIT_FOUND, out.out + out.err
    assert "found 1 violation(s) (no-lost-update)" in out.out
    assert list((tmp_path / "out").glob("db-no-lost-update-hypothesis-bumps-seed3.toml"))


# -- PCT on the run's real length ---------------------------------------------

WALKTHROUGH = HERE.parent / "docs" / "writing-a-system.md"


def _seats_module(where: Path) -> Any:
    """The seats.py of docs/writing-a-system.md, written out and imported as ``seats``."""
    text = WALKTHROUGH.read_text()
    start = text.index("# file: seats.py\n")
    (where / "seats.py").write_text(text[start : text.index("```", start)])
    sys.path.insert(0, str(where))
    try:
        return importlib.import_module("seats")
    finally:
        sys.path.remove(str(where))


@pytest.fixture(scope="module")
def seats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    # Imported as ``seats`` and dropped again after the module's tests, so that a
    # later test of the same process naming another seats.py imports its own.
    sys.modules.pop("seats", None)
    yield _seats_module(tmp_path_factory.mktemp("seats"))
    sys.modules.pop("seats", None)


@pytest.fixture(scope="module")
def seats_dbs(racesim_server: Server, seats: Any) -> Iterator[Databases]:
    made = Prepared(racesim_server)
    yield made.for_system(seats.SYSTEM)
    made.close()


@pytest.fixture(scope="module")
def queue_dbs(racesim_server: Server) -> Iterator[Databases]:
    made = Prepared(racesim_server)
    yield made.for_system(JOBQUEUE)
    made.close()


def test_pct_finds_the_double_booking_of_the_walk_through(
    seats: Any, seats_dbs: Databases, tmp_path: Path
) -> None:
    every, _ = _explore(
        seats_dbs, tmp_path / "x", store="readwrite", strategy="exhaustive", system=seats.SYSTEM
    )
    result, text = _explore(
        seats_dbs,
        tmp_path / "p",
        store="readwrite",
        strategy="pct",
        system=seats.SYSTEM,
        max_examples=40,
    )
    assert set(result.found) == set(every.found) == {"seats-add-up"}, text


@pytest.mark.parametrize(
    ("config", "schedules"), [("2workers", 300), ("2jobs", 1500), ("crash", 300)]
)
def test_pct_finds_every_race_of_the_job_queue(
    queue_dbs: Databases, tmp_path: Path, config: str, schedules: int
) -> None:
    # claimed-while-held on 2jobs takes both change points at the right steps of
    # about 14 (PCT's bound: 1 in n * k ** (d - 1), here about 1 in 600)
    every, _ = _explore(
        queue_dbs,
        tmp_path / "x",
        store="naive",
        strategy="exhaustive",
        system=JOBQUEUE,
        config=config,
    )
    assert len(every.found) == 2
    result, text = _explore(
        queue_dbs,
        tmp_path / "p",
        store="naive",
        strategy="pct",
        system=JOBQUEUE,
        config=config,
        max_examples=schedules,
    )
    assert set(result.found) == set(every.found), text


def test_pct_change_points_fall_within_the_runs_it_makes() -> None:
    # Two customers of two steps each: with the run's real length (4), a change
    # point after the first step is as likely as any other.
    import random

    from racesim.explore.search import change_points

    rng = random.Random(0)
    drawn = [change_points(rng, depth=3, length=4) for _ in range(400)]
    assert all(set(d) <= {1, 2, 3, 4} and len(d) == 2 for d in drawn)
    assert sum(1 in d for d in drawn) > 150


# -- same seed, same result ---------------------------------------------------


def test_other_seeds_saved_examples_do_not_change_a_seeds_result(
    seats: Any, seats_dbs: Databases, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # a fresh .cache/racesim/hypothesis, the example database

    def found(seed: int, schedules: int) -> list[str]:
        opts = ExploreOptions(
            store="readwrite",
            seed=seed,
            max_examples=schedules,
            out=tmp_path / "out",
            system=seats.SYSTEM,
        )
        return sorted(explore(opts, seats_dbs, Reporter(io.StringIO())).found)

    assert (tmp_path / ".cache").exists() is False
    fresh = found(0, 1)  # one schedule of seed 0 books one after the other
    assert found(1, 50) == ["seats-add-up"]  # seed 1 finds the race; it is saved
    assert found(0, 1) == fresh == []
    assert found(1, 50) == ["seats-add-up"]  # and seed 1 finds it again


def test_seed_with_the_exhaustive_strategy_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    argv = ["explore", "--store", "legacy", "--strategy", "exhaustive", "--out", str(tmp_path)]
    assert main([*argv, "--seed", "3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "--seed: the exhaustive strategy draws nothing; fix: drop --seed or use"
        " --strategy hypothesis or pct"
    ]


# -- a sound reduction --------------------------------------------------------


class _Trace:
    """A user's invariant that reads every event: when the last run ends, it reports
    the order it saw (the cause), so each order it can tell apart is one finding."""

    def __init__(self, actors: tuple[Actor, ...]) -> None:
        self.inner = MarkerChecks.of(actors)
        self.left = {a.name for a in actors}
        self.seen: list[str] = []

    def feed(self, event: Event) -> list[Violation]:
        self.inner.feed(event)
        self.seen.append(f"{event.actor}.{event.call}")
        if event.finished is not None:
            self.left.discard(event.actor)
        if self.left:
            return []
        order = " ".join(self.seen)
        return [Violation("order", event.seq, event.label, event.actor, (), order, cause=order)]

    def note(self) -> str:
        return self.inner.note()


@pytest.mark.parametrize("config", ["cron+user", "cron+cron"])
def test_an_added_invariant_sees_every_order_it_can_tell_apart(config: str) -> None:
    traced = dataclasses.replace(REFERENCE, invariants=_Trace, invariant_names=("order",))
    actors = REFERENCE_CONFIGS[config].actors
    full = exhaustive(actors, "model", reduce=False, system=traced)
    reduced = exhaustive(actors, "model", system=traced)
    assert full.complete and reduced.complete
    assert len(reduced.found) == len(full.found) == full.explored


def test_the_reference_and_the_job_queue_say_what_their_invariants_read() -> None:
    assert REFERENCE.reads() == frozenset({"row", "mark", "invoke", "try_task_lock", "clear"})
    assert JOBQUEUE.reads() == frozenset({"enqueue", "find", "claim", "process"})
    # a step the invariants see is never reordered; one they cannot see may be
    collect, mark = access("a", "collect", False, REFERENCE), access("b", "mark", False, REFERENCE)
    assert not collect.seen and mark.seen and not independent(collect, mark)
    assert independent(collect, access("b", "get_freshness", False, REFERENCE))
    # new invariants without a declaration of their own read everything
    added = dataclasses.replace(REFERENCE, invariants=_Trace)
    assert added.reads() is None and access("a", "collect", False, added).seen
    declared = dataclasses.replace(REFERENCE, invariants=_Trace, invariant_reads=frozenset())
    assert declared.reads() == frozenset()


# -- shards -------------------------------------------------------------------


def _schedules(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, ...]]:
    """Record the schedule (its steps' actors) of every run the search counts."""
    import racesim.explore.search as search

    ran: list[tuple[str, ...]] = []
    keep = search._keep

    def spy(result: search.SearchResult, driven: Driven) -> None:
        ran.append(tuple(getattr(e, "actor", "clock") for e in driven.plan.entries))
        keep(result, driven)

    monkeypatch.setattr(search, "_keep", spy)
    return ran


@pytest.mark.parametrize(
    ("config", "n"), [("cron+user", 3), ("user-async+2bg", 4), ("cron+cron", 2)]
)
def test_shards_split_the_schedules_of_the_whole_search(
    monkeypatch: pytest.MonkeyPatch, config: str, n: int
) -> None:
    ran = _schedules(monkeypatch)
    actors = REFERENCE_CONFIGS[config].actors
    whole = exhaustive(actors, "model", system=REFERENCE)
    every = sorted(ran)
    parts = []
    for k in range(1, n + 1):
        ran.clear()
        part = exhaustive(actors, "model", shard=(k, n), system=REFERENCE)
        assert part.complete and part.explored == len(ran)
        parts.append(sorted(ran))
    assert sum(len(p) for p in parts) == whole.explored == len(every)
    assert sorted(s for p in parts for s in p) == every  # disjoint, and together the whole
    assert sum(bool(p) for p in parts) >= 2


# -- every distinct violation is saved ----------------------------------------


@pytest.mark.parametrize("strategy", ["exhaustive", "hypothesis"])
def test_every_violation_of_an_event_is_saved_and_replays(
    racesim_databases: Databases, tmp_path: Path, strategy: str
) -> None:
    # cron's deferred clear is a foreign clear and takes the user's banner down:
    # two invariants broken by one event, each its own counterexample
    extra: dict[str, object] = {"seed": 2, "max_examples": 100} if strategy == "hypothesis" else {}
    result, text = _explore(
        racesim_databases, tmp_path, store="legacy", strategy=strategy, config="cron+user", **extra
    )
    assert {"no-foreign-clear/cleared-by-clear", "banner-stays-up/gone"} <= set(result.found), text
    assert not result.flaky
    for key, path in result.files.items():
        [scenario] = load_all([str(path)])
        assert scenario.expect["legacy"].breaks == key.split("/")[0]
        assert run_one(scenario, "legacy", racesim_databases, Options()).verdict.matches, key


# -- explore --help and replay on another store ---------------------------------


def test_explore_help_lists_every_configuration_and_the_spec_form(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["explore", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for name in [*REFERENCE.configs, *JOBQUEUE.configs]:
        assert name in text, name
    assert "racesim explore FILE.spec" in text


def test_replaying_on_a_store_where_the_fix_holds_is_not_flaky(
    racesim_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    legacy = HERE.parent / "scenarios" / "t0-t4-cron-wipes-user.toml"
    pg = ["--pg", "dsn", "--dsn", racesim_server.conninfo("postgres")]
    assert main(["replay", str(legacy), "--store", "token", *pg]) == 0
    out = capsys.readouterr().out
    assert "flaky" not in out
    assert "does not occur on token" in out
    assert main(["replay", str(legacy), "--store", "legacy", *pg]) == EXIT_FOUND
    assert "reproduced: no-foreign-clear at T+3 on legacy" in capsys.readouterr().out
