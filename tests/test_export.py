"""``--export-spec``: a racesim run written as a .spec that the real isolationtester
replays, with the same steps, the same waits and the watched state changing where
racesim saw it change."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from commands import racesim
from spec_support import Target, target, target15

from racesim.spec.parse import load

__all__ = ["target", "target15"]

ROOT = Path(__file__).resolve().parent.parent
T0_T4 = ROOT / "scenarios" / "t0-t4-cron-wipes-user.toml"
LOCK_WAIT = ROOT / "scenarios" / "maintenance-lock-blocks-mark.toml"
USER_MARK = "2026-01-01 12:00:01+00"
"""The marker the user's refresh sets at T+1 (the virtual clock starts at 12:00)."""


def _steps(output: bytes) -> list[tuple[str, str]]:
    """isolationtester's output as (step name, what it printed) in order."""
    found: list[tuple[str, str]] = []
    for line in output.decode().splitlines():
        m = re.match(r"step (\S+): ", line)
        if m:
            found.append((m.group(1), ""))
        elif found:
            found[-1] = (found[-1][0], found[-1][1] + line + "\n")
    return found


def _marker(printed: str) -> str:
    """The ``last_collection_started_at`` a watch step printed (its first column)."""
    row = printed.splitlines()[2]
    return row.split("|")[0].strip()


def _export(target: Target, tmp_path: Path, scenario: Path, store: str) -> Path:
    out = tmp_path / f"{scenario.stem}-{store}.spec"
    dsn = target.dbs.server.conninfo()
    done = racesim("run", str(scenario), "--store", store, "--export-spec", str(out), "--dsn", dsn)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"wrote {out}" in done.stdout
    return out


def test_the_legacy_counterexample_replays_under_isolationtester(
    target: Target, tmp_path: Path
) -> None:
    """T+0..T+4 on the legacy flag: under the real isolationtester the marker the user
    set at T+1 is wiped by cron's clear at T+3, the step where racesim saw the violation."""
    spec = _export(target, tmp_path, T0_T4, "legacy")
    status, reference = target.reference(spec)
    assert status == 0, reference.decode()
    steps = _steps(reference)
    names = [name for name, _ in steps]
    clear = names.index("cron_clear")
    assert names[clear - 1] == "T+3"  # the clock moved to T+3 first
    watches = [(i, _marker(p)) for i, (n, p) in enumerate(steps) if n.startswith("watch")]
    before = [m for i, m in watches if i < clear]
    after = [m for i, m in watches if i > clear]
    assert before[-1] == USER_MARK
    assert after[0] == ""  # wiped right there, while the user's run still collects
    assert names[clear + 1].startswith("watch")
    # racesim's own spec runner prints exactly what isolationtester printed.
    completed, ours = target.racesim(load(spec))
    assert completed and ours == reference


def test_the_fixed_store_keeps_the_marker_under_isolationtester(
    target15: Target, tmp_path: Path
) -> None:
    spec = _export(target15, tmp_path, T0_T4, "token")
    status, reference = target15.reference(spec)
    assert status == 0, reference.decode()
    steps = _steps(reference)
    names = [name for name, _ in steps]
    # cron's mark was refused, so it holds no token and its clear sends nothing.
    assert "cron_mark" in names and "cron_clear" not in names
    assert "#   T+3 cron: clear (sent no SQL)" in spec.read_text()
    watches = [_marker(p) for n, p in steps if n.startswith("watch")]
    assert watches[-1] == USER_MARK
    assert "last_collection_owner_id = " in spec.read_text()  # compare-and-clear


def test_a_step_that_waited_waits_under_isolationtester(target15: Target, tmp_path: Path) -> None:
    """The maintenance transaction holds the row: the user's mark waits until its
    commit, under isolationtester as in racesim (the marker names the commit)."""
    spec = _export(target15, tmp_path, LOCK_WAIT, "legacy")
    assert "user_mark(ops_commit)" in spec.read_text()
    status, reference = target15.reference(spec)
    assert status == 0, reference.decode()
    text = reference.decode()
    assert re.search(r"step user_mark: UPDATE .* <waiting \.\.\.>\n", text)
    assert "step ops_commit: COMMIT;\nstep user_mark: <... completed>\n" in text
    completed, ours = target15.racesim(load(spec))
    assert completed and ours == reference


def test_replay_exports_a_counterexample(target15: Target, tmp_path: Path) -> None:
    out = tmp_path / "replayed.spec"
    dsn = target15.dbs.server.conninfo()
    done = racesim("replay", str(T0_T4), "--export-spec", str(out), "--dsn", dsn)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "reproduced: no-foreign-clear at T+3 on legacy" in done.stdout
    status, reference = target15.reference(out)
    assert status == 0
    names = [n for n, _ in _steps(reference)]
    assert names[-2:] == ["cron_clear", names[-1]] and names[-1].startswith("watch")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([str(T0_T4)], "writes one run, and this command makes 3"),
        ([str(T0_T4), "--store", "model"], "the model store runs in memory"),
        ([str(T0_T4), "--store", "legacy", "--export-spec-dir"], "unrecognized arguments"),
    ],
)
def test_export_refusals(tmp_path: Path, args: list[str], message: str) -> None:
    out = tmp_path / "x.spec"
    if "--export-spec-dir" in args:
        done = racesim("run", *args)
    else:
        done = racesim("run", *args, "--export-spec", str(out))
    assert done.returncode == 2
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_export_needs_a_file_in_a_folder_that_exists(tmp_path: Path) -> None:
    for target_name, message in (
        (str(tmp_path), "names a folder"),
        (str(tmp_path / "missing" / "x.spec"), "does not exist"),
    ):
        done = racesim("run", str(T0_T4), "--store", "legacy", "--export-spec", target_name)
        assert done.returncode == 2
        assert message in done.stderr


def test_a_spec_run_refuses_export(tmp_path: Path) -> None:
    spec = tmp_path / "a.spec"
    spec.write_text("session s step a { SELECT 1; }\n")
    done = racesim("run", str(spec), "--export-spec", str(tmp_path / "b.spec"))
    assert done.returncode == 2
    assert "--export-spec applies to scenario files" in done.stderr


def test_export_from_python(target15: Target) -> None:
    """``racesim.export_spec``: the same .spec from a run made in Python."""
    import racesim
    from racesim.runner import databases

    scenario = racesim.load(str(T0_T4))
    with databases("dsn", target15.dbs.server.conninfo(), scenario.system) as dbs:
        name = dbs.create()
        outcome = racesim.execute(scenario.plan, "legacy", dbs.server.conninfo(name))
        text = racesim.export_spec(outcome, scenario.plan.actors, dbs.server, "legacy")
    assert (
        "step cron_clear { UPDATE recommendations_state SET last_collection_started_at = NULL"
        in text
    )
    assert text.rstrip().splitlines()[-1].startswith("permutation watch1 cron_prev_mark")


def test_explore_writes_a_spec_beside_each_counterexample(target15: Target, tmp_path: Path) -> None:
    dsn = target15.dbs.server.conninfo()
    done = racesim(
        "explore",
        "--store",
        "legacy",
        "--strategy",
        "exhaustive",
        "--config",
        "cron+user",
        "--export-spec",
        "--out",
        str(tmp_path),
        "--dsn",
        dsn,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    scenarios = sorted(tmp_path.glob("*.toml"))
    assert scenarios
    for scenario in scenarios:
        spec = scenario.with_suffix(".spec")
        assert f"as a .spec: {spec}" in done.stdout
        status, reference = target15.reference(spec)
        assert status == 0, reference.decode()
    refused = racesim("explore", "--store", "model", "--export-spec", "--out", str(tmp_path))
    assert refused.returncode == 2
    assert "--export-spec: the model store runs in memory" in refused.stderr


@pytest.mark.parametrize("scenario", ["crash-then-recovery", "backend-terminated-mid-run"])
def test_a_crashed_run_ends_its_backend_in_the_spec(
    target15: Target, tmp_path: Path, scenario: str
) -> None:
    """A crash (or a terminated backend) becomes a step of racesim's own session that
    ends the run's backend and waits until it is gone, as the engine does."""
    spec = _export(target15, tmp_path, ROOT / "scenarios" / f"{scenario}.toml", "legacy")
    status, reference = target15.reference(spec)
    assert status == 0, reference.decode()
    names = [n for n, _ in _steps(reference)]
    ended = [n for n in names if n.startswith("end_")]
    assert len(ended) == 1
    completed, ours = target15.racesim(load(spec))
    assert completed and ours == reference
