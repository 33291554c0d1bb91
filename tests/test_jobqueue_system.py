"""The job queue as a racesim system: its scenario files, and exploration finding the
naive claim's double claim on its own, on real PostgreSQL. No line of the harness
knows the job queue exists: it is found by name, as any installed system is."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import VERSIONS

from racesim.engine.loop import Options
from racesim.explore.run import Explored, ExploreOptions, explore
from racesim.formats.scenario import load
from racesim.model.plan import Step
from racesim.provision.databases import Databases
from racesim.provision.provide import Server
from racesim.report.text import Reporter
from racesim.runner import Prepared, load_all, run_one
from racesim.system import resolve
from racesim.systems.jobqueue.system import SYSTEM

SCENARIOS = sorted((Path(__file__).parent.parent / "scenarios" / "jobqueue").glob("*.toml"))
CASES = [(p, store) for p in SCENARIOS for store in load(p).stores]


@pytest.fixture(scope="module")
def queue_dbs(racesim_server: Server) -> Iterator[Databases]:
    made = Prepared(racesim_server)
    yield made.for_system(SYSTEM)
    made.close()


def test_the_job_queue_is_found_by_its_installed_name() -> None:
    assert resolve("jobqueue") is SYSTEM
    assert all(load(p).system is SYSTEM for p in SCENARIOS)


@pytest.mark.parametrize("version", VERSIONS, ids=[f"pg{v}" for v in VERSIONS])
@pytest.mark.parametrize(("path", "store"), CASES, ids=[f"{p.stem}-{s}" for p, s in CASES])
def test_scenario_meets_its_expectation(
    path: Path, store: str, version: int, prepared_of: Callable[[int], Prepared]
) -> None:
    dbs = prepared_of(version).for_system(SYSTEM)
    assert dbs.server.version == version
    result = run_one(load(path), store, dbs, Options())
    assert result.verdict.matches, result.verdict.summary
    assert result.outcome.history.stuck is None


def test_the_naive_claim_processes_a_job_twice(queue_dbs: Databases) -> None:
    scenario = load(Path(SCENARIOS[0]).parent / "processed-twice.toml")
    result = run_one(scenario, "naive", queue_dbs, Options())
    assert [(v.invariant, v.label) for v in result.verdict.violations] == [
        ("one-holder", "T+5"),
        ("processed-once", "T+6"),
    ]
    last = result.outcome.history.events[-1]
    assert last.state is not None and last.state[0].results == 2


def test_the_locked_row_waits_on_naive_and_is_skipped_under_skip_locked(
    queue_dbs: Databases,
) -> None:
    scenario = load(Path(SCENARIOS[0]).parent / "locked-row.toml")
    naive = run_one(scenario, "naive", queue_dbs, Options()).outcome.history.events
    skip = run_one(scenario, "skiplocked", queue_dbs, Options()).outcome.history.events
    assert [e.kind for e in naive if e.call == "claim"] == ["wait", "done"]
    assert [(e.kind, e.result.job) for e in skip if e.call == "claim"] == [("step", 2)]


def _explore(dbs: Databases, out: Path, **kw: object) -> tuple[Explored, str]:
    text = io.StringIO()
    opts = ExploreOptions(out=out, example_db=False, system="jobqueue", **kw)  # type: ignore[arg-type]
    return explore(opts, dbs, Reporter(text)), text.getvalue()


@pytest.mark.parametrize("seed", [0, 1])
def test_explore_finds_the_double_claim_and_shrinks_it(
    queue_dbs: Databases, tmp_path: Path, seed: int
) -> None:
    result, text = _explore(queue_dbs, tmp_path, store="naive", seed=seed, max_examples=300)
    assert result.found, text
    for key, driven in result.found.items():
        assert key.startswith("one-holder/")
        steps = [e for e in driven.plan.entries if isinstance(e, Step)]
        calls = [s.call for s in steps]
        # the shortest way there: the job, both workers read it, both claim it
        assert calls.count("enqueue") == 1 and calls.count("find") == 2
        assert calls.count("claim") == 2 and len(steps) <= 6
    saved = sorted(tmp_path.glob("*.toml"))
    assert len(saved) == len(result.found)
    for path in saved:
        assert path.read_text().startswith('system = "jobqueue"\n')
        [scenario] = load_all([str(path)])
        replayed = run_one(scenario, "naive", queue_dbs, Options())
        assert replayed.verdict.matches, replayed.verdict.summary


def test_exhaustive_search_proves_skip_locked_on_two_workers(
    queue_dbs: Databases, tmp_path: Path
) -> None:
    result, text = _explore(
        queue_dbs, tmp_path, store="skiplocked", strategy="exhaustive", config="2workers"
    )
    assert result.complete and not result.found
    # 20 interleavings, also with a move to the lease's end as a lease is taken, and with
    # a crash added to either worker (exhaustive's default moves and faults)
    assert "exhaustive: all 138 distinct schedules explored, none violates" in text
    naive, _ = _explore(
        queue_dbs, tmp_path, store="naive", strategy="exhaustive", config="2workers"
    )
    assert set(naive.found) == {"one-holder/claimed-while-held", "one-holder/claimed-when-done"}


def test_exhaustive_proves_skip_locked_with_clock_moves_and_crashes(
    queue_dbs: Databases, tmp_path: Path
) -> None:
    """--clock-moves 1: every interleaving, each also with one clock move (once a lease
    runs) and with a crash added to either worker."""
    result, text = _explore(
        queue_dbs,
        tmp_path,
        store="skiplocked",
        strategy="exhaustive",
        config="2workers",
        clock_moves=1,
    )
    assert result.complete and not result.found, text
    assert "exhaustive: all 700 distinct schedules explored, none violates" in text
    assert "exhaustive: 640 schedule(s) with a clock move, 474 with an added fault" in text


@pytest.mark.parametrize("config", ["2workers", "crash"])
def test_hypothesis_with_clock_moves_at_the_lease_finds_nothing_on_skip_locked(
    queue_dbs: Databases, tmp_path: Path, config: str
) -> None:
    """Clock moves aimed at the lease's end (and 1 us either side) let claims be taken
    over; the fenced processing keeps every job processed once and none lost."""
    result, text = _explore(
        queue_dbs,
        tmp_path,
        store="skiplocked",
        config=config,
        max_examples=150,
        strategy="hypothesis",
    )
    assert not result.found and not result.flaky, text
    assert "none found" in text
