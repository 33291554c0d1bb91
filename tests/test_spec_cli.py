"""``racesim run FILE.spec``: the command's output, exit statuses and refusals."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from spec_support import SHARED, SIMPLE, Target, need_shared, target15

__all__ = ["target15"]


def racesim(*args: str, dsn: str | None = None) -> subprocess.CompletedProcess[str]:
    extra = ["--dsn", dsn] if dsn else []
    return subprocess.run(
        [sys.executable, "-m", "racesim.cli.main", *args, *extra],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _spec(tmp_path: Path, text: str = SIMPLE) -> Path:
    path = tmp_path / "simple.spec"
    path.write_text(text)
    return path


def test_run_prints_isolationtester_output(target15: Target, tmp_path: Path) -> None:
    path = _spec(tmp_path)
    _status, reference = target15.reference(path)
    done = racesim("run", str(path), dsn=target15.dbs.server.conninfo())
    assert done.returncode == 0, done.stderr
    assert done.stdout.encode() == reference
    assert "step s2u: UPDATE t SET id = 3 WHERE id = 1 RETURNING id; <waiting ...>" in done.stdout


def test_expected_match_and_difference(target15: Target, tmp_path: Path) -> None:
    need_shared()
    spec = SHARED / "specs" / "nowait.spec"
    good = SHARED / "expected" / "nowait.out"
    dsn = target15.dbs.server.conninfo()
    done = racesim("run", str(spec), "--expected", str(good), dsn=dsn)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().endswith(f"output matches {good}")
    wrong = tmp_path / "wrong.out"
    wrong.write_bytes(good.read_bytes().replace(b"(1 row)", b"(one row)", 1))
    done = racesim("run", str(spec), "--expected", str(wrong), dsn=dsn)
    assert done.returncode == 1
    assert f"--- {wrong}\n" in done.stdout
    assert "-(one row)\n+(1 row)\n" in done.stdout
    assert done.stdout.strip().endswith(f"output differs from {wrong}")


def test_timeline_and_json(target15: Target, tmp_path: Path) -> None:
    path = _spec(tmp_path)
    dsn = target15.dbs.server.conninfo()
    done = racesim("run", str(path), "--format", "timeline", dsn=dsn)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "permutation 1: s1u s2u s1c" in lines
    waits = [ln for ln in lines if "s2u" in ln and "waiting (blocked on a lock held by s1)" in ln]
    assert len(waits) == 1
    assert any(ln.endswith("s2u  -> UPDATE 0") or "s2u  -> (0 rows)" in ln for ln in lines)
    done = racesim("run", str(path), "--json", dsn=dsn)
    assert done.returncode == 0, done.stderr
    records = [json.loads(ln) for ln in done.stdout.splitlines()]
    kinds = [(r.get("kind"), r.get("step")) for r in records if r["type"] == "spec-event"]
    assert (
        kinds.index(("wait", "s2u")) < kinds.index(("done", "s1c")) < kinds.index(("done", "s2u"))
    )
    assert records[-1]["type"] == "spec" and records[-1]["completed"] is True
    assert "<waiting ...>" in records[-1]["output"]


BAD = "session a\nstep x { SELECT 1; }\nsession b\nstep x { SELECT 2; }\npermutation x y\n"


def test_bad_spec_exits_2_one_line_per_problem(tmp_path: Path) -> None:
    path = _spec(tmp_path, BAD)
    done = racesim("run", str(path))
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert [ln.split(": ")[0] for ln in lines] == [f"{path}:4", f"{path}:5"]
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--store", "legacy"], "--store applies to scenario files"),
        (["--stop-at-first"], "--stop-at-first applies to scenario files"),
        (["--export-spec", "x.spec"], "--export-spec applies to scenario files"),
        (["--html", "/nonexistent-racesim-dir/p.html"], "does not exist"),
        (["--json", "--format", "timeline"], "--json and --format timeline exclude each other"),
        (["--step-timeout", "0"], "--step-timeout: expected seconds"),
        (["--step-timeout", "soon"], "--step-timeout: expected seconds"),
        (["--expected", "/nonexistent.out"], "--expected /nonexistent.out: cannot read"),
        (["scenarios/t0-t4-cron-wipes-user.toml"], "is not a .spec file"),
    ],
)
def test_options_that_cannot_apply_are_refused(
    tmp_path: Path, args: list[str], message: str
) -> None:
    path = _spec(tmp_path)
    done = racesim("run", str(path), *args)
    assert done.returncode == 2, done.stdout
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_spec_options_are_refused_for_scenarios() -> None:
    for args in (["--expected", "x.out"], ["--format", "timeline"], ["--step-timeout", "5"]):
        done = racesim("run", "scenarios/t0-t4-cron-wipes-user.toml", *args)
        assert done.returncode == 2
        assert "applies to .spec files" in done.stderr
