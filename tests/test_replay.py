"""racesim replay: a saved counterexample reproduces; a tampered one is reported flaky."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

from racesim.explore.run import ExploreOptions, explore
from racesim.provision.databases import Databases
from racesim.report.text import Reporter


def _racesim(args: list[str], dsn: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RACESIM_DSN": dsn}
    return subprocess.run(
        [sys.executable, "-m", "racesim.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_saved_counterexample_replays(racesim_databases: Databases, tmp_path: Path) -> None:
    explore(
        ExploreOptions(store="legacy", seed=2, max_examples=300, out=tmp_path, example_db=False),
        racesim_databases,
        Reporter(io.StringIO()),
    )
    [saved] = tmp_path.glob("*cleared-by-clear*.toml")
    dsn = racesim_databases.server.conninfo()
    done = _racesim(["replay", str(saved)], dsn)
    assert done.returncode == 1, done.stderr
    assert "reproduced: no-foreign-clear at" in done.stdout

    text = saved.read_text()
    last = text.split('at = "')[1].split('"')[0]
    tampered = tmp_path / "tampered.toml"
    tampered.write_text(text.replace(f'at = "{last}"', 'at = "T+0"'))
    flaky = _racesim(["replay", str(tampered)], dsn)
    assert flaky.returncode == 3, flaky.stderr
    assert "did not reproduce (flaky)" in flaky.stdout


def test_replay_of_missing_file_is_bad_input(tmp_path: Path) -> None:
    done = _racesim(["replay", str(tmp_path / "nope.toml")], "postgresql://unused@127.0.0.1:1/x")
    assert done.returncode == 2
    assert "nope.toml" in done.stderr
