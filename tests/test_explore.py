"""racesim explore (Hypothesis strategy) against real PostgreSQL, through the plugin's fixtures."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import psycopg
import pytest

from racesim.cli.explore import cmd_explore
from racesim.cli.main import build_parser, main
from racesim.engine.loop import Options
from racesim.errors import EXIT_FLAKY
from racesim.explore.run import ExploreOptions, explore
from racesim.model.plan import Step
from racesim.provision.databases import Databases
from racesim.provision.provide import Server
from racesim.report.text import Reporter
from racesim.runner import load_all, run_one
from racesim.store.interface import task_lock_key


def _explore(dbs: Databases, out: Path, **kw: object) -> tuple[object, str]:
    text = io.StringIO()
    opts = ExploreOptions(out=out, example_db=False, **kw)  # type: ignore[arg-type]
    return explore(opts, dbs, Reporter(text)), text.getvalue()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_legacy_race_is_found_and_shrunk(
    racesim_databases: Databases, tmp_path: Path, seed: int
) -> None:
    result, text = _explore(
        racesim_databases,
        tmp_path,
        store="legacy",
        seed=seed,
        max_examples=300,
        strategy="hypothesis",
    )
    found = result.found  # type: ignore[attr-defined]
    driven = found["no-foreign-clear/cleared-by-clear"]
    assert driven.steps <= 5
    calls = [e.call for e in driven.plan.entries if isinstance(e, Step)]
    assert calls.count("mark") == 2 and calls[-1] == "clear"
    saved = {p.name for p in tmp_path.glob("*.toml")}
    assert f"legacy-no-foreign-clear--cleared-by-clear-hypothesis-seed{seed}.toml" in saved
    assert len(saved) == len(found)  # one file per invariant and cause
    assert "breaks no-foreign-clear at" in text and f"found {len(found)} violation(s)" in text


def test_saved_file_is_a_scenario_that_run_replays(
    racesim_databases: Databases, tmp_path: Path
) -> None:
    _explore(racesim_databases, tmp_path, store="legacy", seed=4, max_examples=300)
    scenarios = load_all([str(tmp_path)])
    assert scenarios
    for scenario in scenarios:
        assert scenario.stores == ("legacy",)
        result = run_one(scenario, "legacy", racesim_databases, Options())
        assert result.verdict.matches, result.verdict.summary


def test_same_seed_writes_the_same_file(racesim_databases: Databases, tmp_path: Path) -> None:
    _explore(racesim_databases, tmp_path / "a", store="legacy", seed=7, max_examples=300)
    _explore(racesim_databases, tmp_path / "b", store="legacy", seed=7, max_examples=300)
    a, b = ({p.name: p.read_bytes() for p in (tmp_path / d).glob("*.toml")} for d in "ab")
    assert a and a == b


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
        opts = ExploreOptions(
            store="legacy", seed=3, max_examples=200, out=out, strategy="hypothesis"
        )
        result = explore(opts, racesim_databases, Reporter(io.StringIO()))
        [saved] = out.glob("*.toml")
        assert [p.is_dir() for p in (tmp_path / name / "cache" / "hypothesis").iterdir()] == [True]
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


class _Outsider(Reporter):
    """A reporter that, when the search ends, lets another client of the explored
    database take the background task's advisory lock and keep it: the saved
    schedule then runs into a lock the search never met."""

    def __init__(self, server: Server) -> None:
        super().__init__(io.StringIO())
        self.server = server
        self.held: list[psycopg.Connection[Any]] = []

    def end_progress(self) -> None:
        super().end_progress()
        with psycopg.connect(self.server.conninfo("postgres"), autocommit=True) as c:
            row = c.execute(
                "SELECT datname FROM pg_stat_activity WHERE application_name = 'racesim-monitor'"
                " AND pid <> pg_backend_pid() ORDER BY backend_start DESC LIMIT 1"
            ).fetchone()
        assert row is not None
        conn = psycopg.connect(self.server.conninfo(row[0]), autocommit=True)
        conn.execute("SELECT pg_advisory_lock(%s)", (task_lock_key("recommendations"),))
        self.held.append(conn)


def test_a_finding_that_does_not_reproduce_is_flaky_not_found(
    racesim_server: Server, tmp_path: Path
) -> None:
    where = ["--out", str(tmp_path), "--pg", "dsn", "--dsn", racesim_server.conninfo("postgres")]
    search = ["--strategy", "exhaustive", "--config", "user-async+2bg"]
    args = build_parser().parse_args(["explore", "--store", "token", *search, *where])
    reporter = _Outsider(racesim_server)
    try:
        status = cmd_explore(args, reporter)
    finally:
        for conn in reporter.held:
            conn.close()
    text = reporter.out.getvalue()
    assert reporter.held and status == EXIT_FLAKY, text
    [flaky] = [
        line
        for line in text.splitlines()
        if line.startswith("flaky: ") and "no-foreign-clear broke at T+" in line
    ]
    # both outcomes: what the search saw, and what the replay gave
    assert "replaying the saved schedule gave: breaks model-agreement" in flaky
    summary = text.splitlines()[-1]
    # 98 interleavings, each also with a clock move to the stale marker's boundary
    # right after a marker is set (exhaustive's default moves)
    assert summary.startswith("no violation reproduced after 196 schedules; "), summary
    assert "flaky, not counted (" in summary and "no-foreign-clear/cleared-by-clear" in summary
    assert "found" not in summary


@pytest.mark.parametrize(
    ("store", "config"), [("legacy", "cron+cron"), ("token", "user-async+2bg")]
)
def test_config_fixes_the_runs_hypothesis_explores(
    racesim_databases: Databases, tmp_path: Path, store: str, config: str
) -> None:
    from racesim.store.system import CONFIGS

    result, _ = _explore(
        racesim_databases,
        tmp_path,
        store=store,
        config=config,
        seed=1,
        max_examples=300,
        strategy="hypothesis",
    )
    assert result.found  # type: ignore[attr-defined]
    for driven in result.found.values():  # type: ignore[attr-defined]
        # the configured runs (shrinking may drop or simplify some), never runs drawn
        names = {a.name for a in CONFIGS[config].actors}
        assert {a.name for a in driven.plan.actors} <= names, driven.plan.actors
    for saved in tmp_path.glob("*.toml"):
        assert saved.name.endswith(f"-hypothesis-{config}-seed1.toml")
        assert f"--config {config} --seed 1" in saved.read_text()


@pytest.mark.parametrize("strategy", ["exhaustive", "pct"])
def test_max_examples_bounds_the_systematic_strategies(
    racesim_databases: Databases, tmp_path: Path, strategy: str
) -> None:
    result, text = _explore(
        racesim_databases,
        tmp_path,
        store="token",
        strategy=strategy,
        # (PCT finds the duplicate delivery of "mixed" within ten schedules)
        config="mixed" if strategy == "exhaustive" else "single-delivery",
        max_examples=10,
    )
    assert result.schedules == 10  # type: ignore[attr-defined]
    assert "budget spent after 10 schedules: none found, search incomplete" in text


def test_budget_bounds_shrinking_and_the_summary_says_by_how_much(
    racesim_databases: Databases, tmp_path: Path
) -> None:
    import re
    import time

    started = time.monotonic()
    result, text = _explore(racesim_databases, tmp_path, store="legacy", seed=2, budget=2.0)
    took = time.monotonic() - started
    assert result.found  # type: ignore[attr-defined]
    m = re.search(r"shrinking took (\d+\.\d\d)s beyond the 2s budget \(at most 0.50s\)", text)
    assert m, text
    over = float(m.group(1))
    assert over <= 0.5 + 0.5  # one schedule may be under way when the allowance ends
    assert took <= 2.0 + over + 5.0  # the start of a database, the replay of what was found
