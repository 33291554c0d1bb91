"""The Hypothesis state machines find the reference races on their own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import Phase
from hypothesis.stateful import run_state_machine_as_test

from racesim.engine.loop import Options
from racesim.engine.pool import SessionPool
from racesim.explore.machines import RaceFound, race_machine
from racesim.explore.profiles import settings_for
from racesim.formats.scenario import load
from racesim.model.plan import Actor
from racesim.provision.databases import Databases
from racesim.runner import run_one
from racesim.store.system import ROSTER, SYSTEM


@pytest.fixture
def pool(racesim_databases: Databases, request: pytest.FixtureRequest) -> Iterator[SessionPool]:
    name = racesim_databases.create()
    with SessionPool(racesim_databases.server.conninfo(name), request.param, SYSTEM) as p:
        yield p
    racesim_databases.drop(name)


def _run(
    store: str,
    pool: SessionPool,
    roster: tuple[Actor, ...] = ROSTER,
    clock_moves: int = 2,
    steps: int = 20,
    out: Path | None = None,
) -> str:
    s = settings_for(
        "ci",
        max_examples=1000,
        stateful_step_count=steps,
        phases=[Phase.generate],
        print_blob=False,
    )
    machine = race_machine(
        store, pool, roster=roster, clock_moves=clock_moves, out=out, system=SYSTEM
    )
    with pytest.raises(RaceFound) as found:
        run_state_machine_as_test(machine, settings=s)
    return str(found.value)


@pytest.mark.parametrize("pool", ["legacy"], indirect=True)
def test_legacy_machine_finds_a_foreign_clear(
    pool: SessionPool, racesim_databases: Databases, tmp_path: Path
) -> None:
    assert _run("legacy", pool, out=tmp_path).startswith("no-foreign-clear:")
    # the failure was saved as a scenario that replays to the same violation
    [path] = tmp_path.glob("machine-legacy-no-foreign-clear--*-seed0.toml")
    saved = load(path)
    result = run_one(saved, "legacy", racesim_databases, Options())
    assert result.verdict.matches, result.verdict.summary


@pytest.mark.parametrize("pool", ["token"], indirect=True)
def test_token_machine_reports_duplicate_delivery(pool: SessionPool) -> None:
    async_path = tuple(a for a in ROSTER if a.name in ("user2", "first", "second"))
    # The race takes three runs about a dozen steps to set up: longer examples reach it
    # much sooner. No clock moves: past the 5-minute window every marker is fair game.
    message = _run("token", pool, async_path, clock_moves=0, steps=30)
    # What the owner token does not prevent: one copy of a delivered invoke clears the other's.
    assert message.startswith(
        (
            "no-foreign-clear: first cleared the marker of second",
            "no-foreign-clear: second cleared the marker of first",
        )
    )


@pytest.mark.parametrize("pool", ["legacy"], indirect=True)
def test_legacy_machine_finds_the_set_collection_error_clear(pool: SessionPool) -> None:
    # A cron run whose persist fails and which dies before its deferred clear can
    # wipe another run's marker only through set_collection_error.
    roster = (
        Actor("user", "refresh", {"mode": "sync"}),
        Actor("cron", "cron", faults=frozenset({"persist_fails", "crash_before_clear"})),
    )
    # No clock moves: past the window, user's own clear after a takeover is another race.
    message = _run("legacy", pool, roster, clock_moves=0)
    assert message.startswith(
        "no-foreign-clear: cron cleared the marker of user with set_collection_error"
    )


@pytest.mark.parametrize("pool", ["token"], indirect=True)
def test_token_machine_finds_nothing_the_token_prevents(pool: SessionPool) -> None:
    """Over the whole roster the token store may break only through a duplicated delivery."""
    s = settings_for(
        "ci", max_examples=200, stateful_step_count=20, phases=[Phase.generate], print_blob=False
    )
    try:
        run_state_machine_as_test(race_machine("token", pool, system=SYSTEM), settings=s)
    except RaceFound as found:
        assert str(found).startswith(
            (
                "no-foreign-clear: first cleared the marker of second",
                "no-foreign-clear: second cleared the marker of first",
                "banner-stays-up: first",
                "banner-stays-up: second",
            )
        ), str(found)
