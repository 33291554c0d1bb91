"""``racesim run`` end to end: timelines, JSON lines, exit statuses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from racesim.cli.main import main
from racesim.provision.provide import Server

ROOT = Path(__file__).parent.parent
T0 = ROOT / "scenarios" / "t0-t4-cron-wipes-user.toml"


def test_run_prints_the_timeline_and_matches(
    pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", str(T0), "--dsn", pg_server.conninfo()]) == 0
    out = capsys.readouterr().out
    assert "[legacy]" in out and "[token]" in out
    t3 = [line for line in out.splitlines() if line.strip().startswith("T+3")]
    assert len(t3) == 3 and "cron: clear -> ok" in t3[0]
    assert "!! no-foreign-clear: cron cleared the marker of user" in out
    assert "breaks no-foreign-clear at T+3, as expected" in out
    assert "3 matched, 0 did not" in out


def test_json_lines(pg_server: Server, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(T0), "--store", "legacy", "--json", "--dsn", pg_server.conninfo()]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    events = [r for r in records if r["type"] == "event"]
    verdict = [r for r in records if r["type"] == "verdict"]
    assert len(verdict) == 1 and verdict[0]["matches"]
    t3 = next(e for e in events if e["label"] == "T+3")
    assert t3["violations"] == ["no-foreign-clear", "banner-stays-up"]
    assert t3["marker"]["started_at"] is None and t3["holder"] == "user"
    assert t3["call"] == "clear" and t3["args"] == [""] and t3["vtime"].endswith("12:00:03+00:00")
    assert isinstance(t3["wall_ms"], float)


def test_unmet_expectation_exits_1(
    tmp_path: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    wrong = tmp_path / "wrong.toml"
    wrong.write_text(
        T0.read_text().replace(
            'legacy = { breaks = "no-foreign-clear", at = "T+3" }', 'legacy = "holds"'
        )
    )
    assert main(["run", str(wrong), "--store", "legacy", "--dsn", pg_server.conninfo()]) == 1
    assert "FAIL breaks no-foreign-clear at T+3, expected it to hold" in capsys.readouterr().out


def test_expected_break_that_does_not_happen_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wrong = tmp_path / "wrong.toml"
    wrong.write_text(
        T0.read_text().replace(
            'model = "holds"', 'model = { breaks = "no-foreign-clear", at = "T+3" }'
        )
    )
    assert main(["run", str(wrong), "--store", "model"]) == 1
    assert "holds, expected breaks no-foreign-clear at T+3" in capsys.readouterr().out


def test_folder_of_scenarios_from_a_subprocess(pg_server: Server) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "racesim.cli.main",
            "run",
            str(ROOT / "scenarios"),
            "--store",
            "token",
            "--dsn",
            pg_server.conninfo(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 did not" in proc.stdout


def test_password_in_dsn_never_printed(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "run",
            str(T0),
            "--store",
            "token",
            "--dsn",
            "postgresql://racer:hunter2secret@/nodb?host=/nonexistent-racesim",
        ]
    )
    assert code == 2
    captured = capsys.readouterr()
    assert "hunter2secret" not in captured.out + captured.err
    assert captured.err.strip()


def test_program_diverging_from_the_schedule_at_run_time(
    tmp_path: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    """On legacy the skipped delivery carries no token and never calls clear: the schedule's
    line for that clear is reported with its file and line, as bad input."""
    text = (ROOT / "scenarios" / "duplicate-delivery.toml").read_text()
    text = text.replace('stores = ["token", "model"]', 'stores = ["legacy"]')
    text = text.replace("[expect]\n", '[expect]\nlegacy = "holds"\n')
    legacy_only = tmp_path / "legacy-dup.toml"
    legacy_only.write_text(text)
    line = next(n for n, s in enumerate(text.splitlines(), 1) if "T+5 second: clear" in s)
    assert main(["run", str(legacy_only), "--dsn", pg_server.conninfo()]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"{legacy_only}:{line}: step 'T+5 second: clear' does not match the program: second "
        "has finished (skipped: already running); remove this step of second"
    ]
