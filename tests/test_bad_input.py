"""Hostile scenario files: exit 2, one line per problem naming file, line and fix."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from racesim.cli.main import main

BAD = Path(__file__).parent / "bad_scenarios"
EXPECTED = dict(
    line.split("\t")
    for line in (BAD / "EXPECTED.txt").read_text().splitlines()
    if line and not line.startswith("#")
)


def test_corpus_is_complete() -> None:
    files = {p.name for p in BAD.glob("*.toml")}
    assert files == set(EXPECTED) and len(files) >= 25


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_scenario_is_refused_with_file_line_and_fix(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = BAD / name
    assert main(["run", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.strip().splitlines()
    assert lines, "no message"
    assert "Traceback" not in err
    for line in lines:
        assert re.match(rf"^{re.escape(str(path))}:\d+: \S", line), line
        assert len(line) < 400
    assert any(EXPECTED[name] in line for line in lines), err


def test_all_problems_of_a_file_are_listed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "many.toml"
    bad.write_text(
        'schedule = [\n  "T+0 ghost: mark",\n  "-1m",\n]\n\n'
        '[actors]\nuser = { program = "nope" }\n\n[expect]\ntoken = "maybe"\n'
    )
    assert main(["run", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) >= 4
    assert any(":2: unknown actor 'ghost'" in e for e in err)
    assert any(":3: clock move" in e for e in err)
    assert any(":7: actor user: unknown program" in e for e in err)


def test_bad_input_starts_nothing(tmp_path: Path) -> None:
    """A bad file is refused before any PostgreSQL is provisioned."""
    runs = tmp_path / "runs"
    runs.mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "racesim.cli.main", "run", str(BAD / "unknown-actor.toml")],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "RACESIM_RUN_DIR": str(runs)},
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert list(runs.iterdir()) == []


def test_missing_file_and_bad_option(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "/nonexistent/x.toml"]) == 2
    assert "cannot read the scenario" in capsys.readouterr().err
    assert main(["run", "scenarios", "--store", "mysql"]) == 2
    assert "unknown store 'mysql'" in capsys.readouterr().err
