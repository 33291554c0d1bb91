"""Bad options and environment: exit 2, one clear line, no traceback, no password shown."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import commands
import pytest
from commands import racesim

ROOT = Path(__file__).parent.parent
SCENARIO = str(ROOT / "scenarios" / "two-users-refresh.toml")
SECRET = "s3cret-Pa55word"


def assert_refused(proc: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert SECRET not in proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_malformed_dsn_in_environment() -> None:
    proc = racesim(
        "run", SCENARIO, "--store", "token", env={"RACESIM_DSN": f"postgresql://u:{SECRET}@[::1"}
    )
    assert_refused(proc, "RACESIM_DSN", "malformed", "fix:")


def test_unreachable_dsn() -> None:
    proc = racesim(
        "run",
        SCENARIO,
        "--store",
        "token",
        "--dsn",
        f"postgresql://u:{SECRET}@/db?host=/nonexistent-racesim-dir",
    )
    assert_refused(proc, "--dsn", "cannot connect", "fix:")


def test_unknown_option_and_bad_values() -> None:
    assert_refused(racesim("run", SCENARIO, "--frobnicate"), "unrecognized arguments")
    assert_refused(racesim("run", SCENARIO, "--store", "oracle"), "unknown store")
    assert_refused(racesim("bench", "startup", "--repeat", "many"), "invalid int value")
    assert_refused(racesim("launch"), "invalid choice")
    assert_refused(racesim("run", SCENARIO, "--pg", "cloud"), "invalid choice")


@pytest.fixture(scope="module")
def password_cluster() -> Iterator[str]:
    """A cluster that wants a password from role racer over its socket."""
    with commands.password_cluster({"racer": "right-one"}) as cluster:
        params = cluster.params
        yield f"host={params['host']} port={params['port']} dbname=postgres user=racer"


def test_wrong_password(password_cluster: str) -> None:
    proc = racesim(
        "run", SCENARIO, "--store", "token", "--dsn", f"{password_cluster} password={SECRET}"
    )
    assert_refused(proc, "--dsn", "password authentication failed", "fix:")


@pytest.mark.parametrize("form", ["text", "json"])
def test_right_password_runs_and_never_prints_it(password_cluster: str, form: str) -> None:
    args = ["run", SCENARIO, "--store", "token"] + (["--json"] if form == "json" else [])
    proc = racesim(*args, env={"RACESIM_DSN": f"{password_cluster} password=right-one"})
    assert proc.returncode == 0, proc.stderr
    assert "right-one" not in proc.stdout + proc.stderr


def test_password_never_reaches_explore_output_or_saved_files(
    password_cluster: str, tmp_path: Path
) -> None:
    dsn = f"{password_cluster} password=right-one"
    out = tmp_path / "found"
    proc = racesim(
        "explore",
        "--store",
        "legacy",
        "--seed",
        "2",
        "--max-examples",
        "50",
        "--out",
        str(out),
        "--dsn",
        dsn,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    saved = list(out.glob("*.toml"))
    assert saved
    replay = racesim("replay", str(saved[0]), "--dsn", dsn)
    assert replay.returncode == 1, replay.stdout + replay.stderr
    texts = [proc.stdout, proc.stderr, replay.stdout, replay.stderr]
    texts += [p.read_text() for p in saved]
    assert not any("right-one" in text for text in texts)
