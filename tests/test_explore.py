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


def test_same_seed_same_bytes_however_slow_the_machine(
    racesim_databases: Databases, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A loaded machine is a clock that runs fast against the work done. Three runs
    # of one seed, each with a clean example database and each on a "slower
    # machine" (every reading of time.monotonic() a further 0.05 s, 0.5 s, 5 s
    # later), write the same bytes after the same number of schedules as an
    # unhurried reference run.
    import time

    import racesim.explore.profiles as profiles

    def run(name: str) -> tuple[int, bytes]:
        monkeypatch.setattr(profiles, "CACHE", tmp_path / name / "cache")
        out = tmp_path / name / "out"
        opts = ExploreOptions(store="legacy", seed=3, max_examples=200, out=out)
        result = explore(opts, racesim_databases, Reporter(io.StringIO()))
        [saved] = out.glob("*.toml")
        assert (tmp_path / name / "cache" / "hypothesis" / "legacy").is_dir()
        return result.schedules, saved.read_bytes()

    reference = run("reference")
    real = time.monotonic
    for slowness in (0.05, 0.5, 5.0):
        monkeypatch.setattr(time, "monotonic", _LoadedClock(real(), slowness))
        try:
            assert run(f"slow{slowness}") == reference, f"{slowness}s per clock reading"
        finally:
            monkeypatch.setattr(time, "monotonic", real)


class _LoadedClock:
    """A monotonic clock that moves ``step`` seconds further at every reading."""

    def __init__(self, start: float, step: float) -> None:
        self.now, self.step = start, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now
