"""The portfolio strategy, racesim explore's default: PCT at two depths and swarm
schedules taking turns, seeded, on real PostgreSQL."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from racesim.explore.portfolio import candidates
from racesim.explore.run import Explored, ExploreOptions, explore
from racesim.provision.databases import Databases
from racesim.report.text import Reporter
from racesim.store.system import CONFIGS, SYSTEM

FOREIGN_CLEAR = "no-foreign-clear/cleared-by-clear"


def _explore(dbs: Databases, out: Path, **kw: object) -> tuple[Explored, str]:
    text = io.StringIO()
    opts = ExploreOptions(out=out, example_db=False, **kw)  # type: ignore[arg-type]
    return explore(opts, dbs, Reporter(text)), text.getvalue()


def test_portfolio_is_the_default() -> None:
    assert ExploreOptions(store="token").strategy == "portfolio"


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_the_default_finds_the_second_invokes_foreign_clear_on_token(
    racesim_databases: Databases, tmp_path: Path, seed: int
) -> None:
    result, text = _explore(racesim_databases, tmp_path, store="token", seed=seed)
    assert FOREIGN_CLEAR in result.found, text
    assert result.first_found is not None  # how fast: racesim bench explore, not this test
    assert f"-portfolio-seed{seed}.toml" in str(result.files[FOREIGN_CLEAR])
    # the summary says what each member searched and what it found first
    assert "portfolio: pct-d2 100 schedules" in text and "; swarm 100 schedules" in text
    assert f"found {FOREIGN_CLEAR} at its schedule" in text


def test_a_seed_decides_the_whole_search(racesim_databases: Databases, tmp_path: Path) -> None:
    runs = []
    for name in ("a", "b"):
        result, _ = _explore(
            racesim_databases, tmp_path / name, store="legacy", seed=7, max_examples=60
        )
        members = result.detail.split("; ")
        # the times differ from run to run; the schedules and findings do not
        runs.append(
            (
                result.schedules,
                [m.split(" (")[0] for m in members],
                sorted(p.read_bytes() for p in (tmp_path / name).glob("*.toml")),
            )
        )
    assert runs[0] == runs[1]
    assert runs[0][0] == 60


def test_swarm_schedules_reach_a_race_that_needs_a_fault(
    racesim_databases: Databases, tmp_path: Path
) -> None:
    """A persist that fails clears through set_collection_error: only schedules that
    give a run that fault can break no-foreign-clear that way."""
    result, text = _explore(racesim_databases, tmp_path, store="legacy", seed=1)
    assert "no-foreign-clear/cleared-by-set_collection_error" in result.found, text
    driven = result.found["no-foreign-clear/cleared-by-set_collection_error"]
    assert any(a.faults for a in driven.plan.actors)


def test_single_delivery_leaves_the_second_invoke_out(
    racesim_databases: Databases, tmp_path: Path
) -> None:
    result, text = _explore(
        racesim_databases, tmp_path, store="token", config="single-delivery", seed=1
    )
    assert FOREIGN_CLEAR not in result.found, text
    assert "after 300 schedules" in text


def test_candidates_carry_each_runs_faults_and_leader() -> None:
    found = {a.name: (faults, leader) for a, faults, leader in candidates(CONFIGS["any"], SYSTEM)}
    assert found["cron"] == (("persist_fails", "crash_before_clear"), None)
    assert found["user2-bg1"][1] == "user2" and "lock_check_fails" in found["user2-bg1"][0]
    assert found["user2"][0] == ("invoke_fails",)
