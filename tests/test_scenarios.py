"""Every scenario file under every store it names meets its expectation, on real PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import VERSIONS

from racesim.engine.loop import Options
from racesim.formats.scenario import load
from racesim.provision.databases import Databases
from racesim.runner import Prepared, run_one

SCENARIOS = sorted((Path(__file__).parent.parent / "scenarios").glob("*.toml"))
CASES = [(p, store) for p in SCENARIOS for store in load(p).stores]


@pytest.mark.parametrize("version", VERSIONS, ids=[f"pg{v}" for v in VERSIONS])
@pytest.mark.parametrize(("path", "store"), CASES, ids=[f"{p.stem}-{s}" for p, s in CASES])
def test_scenario_meets_its_expectation(
    path: Path, store: str, version: int, prepared_of: Callable[[int], Prepared]
) -> None:
    scenario = load(path)
    dbs = prepared_of(version).for_system(scenario.system)
    assert dbs.server.version == version
    result = run_one(scenario, store, dbs, Options())
    assert result.verdict.matches, result.verdict.summary
    assert result.outcome.history.stuck is None


def test_the_original_timeline_breaks_on_legacy_exactly_at_t3(databases: Databases) -> None:
    scenario = load(Path(__file__).parent.parent / "scenarios" / "t0-t4-cron-wipes-user.toml")
    legacy = run_one(scenario, "legacy", databases, Options())
    first = legacy.verdict.violations[0]
    assert (first.invariant, first.label, first.runs) == (
        "no-foreign-clear",
        "T+3",
        ("cron", "user"),
    )
    token = run_one(scenario, "token", databases, Options())
    assert token.verdict.violations == ()
    t3 = next(e for e in token.outcome.history.events if e.label == "T+3")
    assert t3.state is not None and t3.state.is_set


def test_stop_at_first_stops_the_run(databases: Databases) -> None:
    scenario = load(Path(__file__).parent.parent / "scenarios" / "t0-t4-cron-wipes-user.toml")
    full = run_one(scenario, "legacy", databases, Options())
    short = run_one(scenario, "legacy", databases, Options(stop_at_first=True))
    assert short.outcome.history.events[-1].label == "T+3"
    assert len(short.outcome.history.events) < len(full.outcome.history.events)


def test_model_agreement_is_checked_on_token(databases: Databases) -> None:
    scenario = load(Path(__file__).parent.parent / "scenarios" / "two-users-refresh.toml")
    result = run_one(scenario, "token", databases, Options())
    compared = [e for e in result.outcome.history.events if e.call == "mark"]
    assert compared and all(e.model == e.result for e in compared)
