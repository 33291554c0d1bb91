"""racesim explore (Hypothesis strategy) against real PostgreSQL, through the plugin's fixtures."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from racesim.cli.main import main
from racesim.engine.loop import Options
from racesim.explore.run import ExploreOptions, explore
from racesim.provision.databases import Databases
from racesim.report.text import Reporter
from racesim.runner import load_all, run_one


def _explore(dbs: Databases, out: Path, **kw: object) -> tuple[object, str]:
    text = io.StringIO()
    opts = ExploreOptions(out=out, example_db=False, **kw)  # type: ignore[arg-type]
    return explore(opts, dbs, Reporter(text)), text.getvalue()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_legacy_race_is_found_and_shrunk(
    racesim_databases: Databases, tmp_path: Path, seed: int
) -> None:
    result, text = _explore(
        racesim_databases, tmp_path, store="legacy", seed=seed, max_examples=300
    )
    driven = result.found["no-foreign-clear"]  # type: ignore[attr-defined]
    assert driven.steps <= 5
    calls = [e.call for e in driven.plan.entries]
    assert calls.count("mark") == 2 and calls[-1] == "clear"
    [saved] = tmp_path.glob("*.toml")
    assert saved.name == f"legacy-no-foreign-clear-hypothesis-seed{seed}.toml"
    assert "breaks no-foreign-clear at" in text and "found 1 violation(s)" in text


def test_saved_file_is_a_scenario_that_run_replays(
    racesim_databases: Databases, tmp_path: Path
) -> None:
    _explore(racesim_databases, tmp_path, store="legacy", seed=4, max_examples=300)
    [scenario] = load_all([str(tmp_path)])
    assert scenario.stores == ("legacy",)
    result = run_one(scenario, "legacy", racesim_databases, Options())
    assert result.verdict.matches, result.verdict.summary


def test_same_seed_writes_the_same_file(racesim_databases: Databases, tmp_path: Path) -> None:
    _explore(racesim_databases, tmp_path / "a", store="legacy", seed=7, max_examples=300)
    _explore(racesim_databases, tmp_path / "b", store="legacy", seed=7, max_examples=300)
    [a], [b] = (list((tmp_path / d).glob("*.toml")) for d in "ab")
    assert a.name == b.name
    assert a.read_bytes() == b.read_bytes()


def test_unfinished_search_is_never_a_pass(racesim_databases: Databases, tmp_path: Path) -> None:
    result, text = _explore(
        racesim_databases,
        tmp_path,
        store="token",
        strategy="pct",
        config="cron+user",
        max_examples=5,
    )
    assert not result.found  # type: ignore[attr-defined]
    assert "budget spent after 5 schedules: none found, search incomplete" in text
    assert not list(tmp_path.glob("*.toml"))


@pytest.mark.parametrize(
    "argv",
    [
        ["--budget", "soon"],
        ["--budget", "0s"],
        ["--max-examples", "0"],
        ["--shard", "3/2"],
        ["--shard", "1/2"],  # only exhaustive splits
        ["--strategy", "random"],
        ["--config", "nope", "--strategy", "pct"],
        ["--budget", "1s", "--max-examples", "3"],
    ],
)
def test_bad_options_exit_2_with_one_line(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["explore", "--store", "legacy", "--pg", "dsn", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err and len(err.splitlines()) == 1
