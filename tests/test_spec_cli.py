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
    assert f"== {path} [spec] permutation 1: s1u s2u s1c" in lines
    waits = [ln for ln in lines if "s2: s2u -> waiting (blocked on a lock held by s1)" in ln]
    assert len(waits) == 1
    assert any("s2: s2u -> (0 rows) (after waiting)" in ln for ln in lines)
    assert "          UPDATE t SET id = 3 WHERE id = 1 RETURNING id;" in lines
    assert lines[-2].split() == ["ok", "ran", "to", "its", "end"]
    done = racesim("run", str(path), "--json", dsn=dsn)
    assert done.returncode == 0, done.stderr
    records = [json.loads(ln) for ln in done.stdout.splitlines()]
    kinds = [(r["kind"], r["call"]) for r in records if r["type"] == "event"]
    assert kinds == [("step", "s1u"), ("wait", "s2u"), ("step", "s1c"), ("done", "s2u")]
    verdicts = [r for r in records if r["type"] == "verdict"]
    assert [(v["name"], v["matches"]) for v in verdicts] == [("permutation 1: s1u s2u s1c", True)]
    assert records[-1]["type"] == "spec" and records[-1]["completed"] is True
    assert "<waiting ...>" in records[-1]["output"]


def test_timeline_keeps_isolationtester_stderr_lines(target15: Target, tmp_path: Path) -> None:
    """``--format timeline`` replaces isolationtester's stdout; what it writes to stderr
    (an unused step, a failed setup) still reaches stderr, and the verdict says where
    the spec stopped."""
    text = SIMPLE.replace("step s1c { COMMIT; }", "step s1c { COMMIT; }\nstep s1x { SELECT 1; }")
    text = text.replace("setup { BEGIN; }", "setup { SELECT 1/0; }")
    path = _spec(tmp_path, text)
    done = racesim("run", str(path), "--format", "timeline", dsn=target15.dbs.server.conninfo())
    assert done.returncode == 1, done.stdout + done.stderr
    assert "unused step name: s1x" in done.stderr.splitlines()
    assert "setup of session s1 failed: ERROR:  division by zero" in done.stderr
    verdict = done.stdout.splitlines()[-2].split(None, 1)
    assert verdict[0] == "FAIL"
    assert verdict[1].startswith("stopped where isolationtester stops (exit 1): setup of session")


SPEC_AND_SCENARIO = """
setup { CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1); }
teardown { DROP TABLE t; }
session s1
setup { BEGIN; }
step s1u { UPDATE t SET id = 2; }
step s1c { COMMIT; }
session s2
setup { BEGIN; }
step s2u { UPDATE t SET id = 3 WHERE id = 1 RETURNING id; }
step s2x { SELECT 1/0; }
permutation s1u s2u s1c s2x
"""
"""A wait, its completion and an error, as a .spec and (below) as a scenario of its system."""


def test_spec_and_scenario_runs_write_one_json_event_schema(
    target15: Target, tmp_path: Path
) -> None:
    """``racesim run FILE.spec --json`` and ``racesim run SCENARIO --json`` write their
    events with the same keys, each key's values of the same JSON types: here the same
    interleaving, once as isolationtester runs it and once as a scenario of the spec's
    system that racesim's engine runs."""
    dsn = target15.dbs.server.conninfo()
    spec = _spec(tmp_path, SPEC_AND_SCENARIO)
    spec.with_name(spec.name + ".toml").write_text('[invariants]\nnever = "SELECT 1 WHERE false"\n')
    scenario = tmp_path / "simple.toml"
    scenario.write_text(
        f'system = "spec:{spec}"\nname = "the permutation"\nstores = ["spec"]\n'
        'schedule = ["s1: s1u", "s2: s2u", "s1: s1c", "s2: s2x"]\n'
        '[actors]\ns1 = { program = "s1" }\ns2 = { program = "s2" }\n'
        '[expect]\nspec = "holds"\n'
    )
    by_spec = racesim("run", str(spec), "--json", dsn=dsn)
    by_scenario = racesim("run", str(scenario), "--json", dsn=dsn)
    assert by_spec.returncode == 0, by_spec.stderr
    assert by_scenario.returncode == 0, by_scenario.stderr

    def events(out: str) -> list[dict[str, object]]:
        records = [json.loads(ln) for ln in out.splitlines()]
        return [r for r in records if r["type"] == "event"]

    def types(records: list[dict[str, object]]) -> dict[str, set[str]]:
        seen: dict[str, set[str]] = {}
        for r in records:
            for key, value in r.items():
                seen.setdefault(key, set()).add(type(value).__name__)
        return seen

    spec_events, scenario_events = events(by_spec.stdout), events(by_scenario.stdout)
    kinds = [(r["kind"], r["call"]) for r in spec_events]
    assert kinds == [(r["kind"], r["call"]) for r in scenario_events]
    assert kinds == [
        ("step", "s1u"),
        ("wait", "s2u"),
        ("step", "s1c"),
        ("done", "s2u"),
        ("step", "s2x"),
    ]
    assert spec_events[-1]["sqlstate"] == scenario_events[-1]["sqlstate"] == "22012"
    spec_types, scenario_types = types(spec_events), types(scenario_events)
    # The watched state goes under the system's key: a spec run watches nothing.
    assert spec_types.pop("state") == {"NoneType"}
    assert scenario_types.pop("broken") <= {"dict", "NoneType"}
    assert set(spec_types) == set(scenario_types)
    for key, found in spec_types.items():
        # A spec run has no virtual clock: vtime is null where the engine has a time.
        assert found - {"NoneType"} <= scenario_types[key], key


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
