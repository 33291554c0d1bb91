"""``--pg-version N`` (``RACESIM_PG_VERSION``, ``racesim_pg_version``) picks the
server of racesim's own cluster; a version not installed, a DSN or Docker is refused."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from racesim.cli.main import main
from racesim.provision.binaries import VersionNotFound, available, find_binaries

ROOT = Path(__file__).resolve().parent.parent
DSN = "postgresql://racesim@127.0.0.1:1/none"
VERSION_SPEC = """
session s1
step s1v { SELECT current_setting('server_version_num')::int / 10000 AS major; }
"""
INSTALLED = [b.version for b in available()]
PYTEST = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "0"]


@pytest.fixture(autouse=True)
def _no_version_left(monkeypatch: pytest.MonkeyPatch) -> None:
    # --pg-version sets RACESIM_PG_VERSION for racesim's worker processes: setting it
    # here first makes the monkeypatch remove it again after the test.
    for name in ("RACESIM_PG_VERSION", "RACESIM_DSN"):
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)


def test_a_version_is_found_among_every_installed_server() -> None:
    assert sorted(set(INSTALLED)) == INSTALLED
    for version in INSTALLED:
        assert find_binaries(str(version)).version == version
    with pytest.raises(VersionNotFound) as caught:
        find_binaries("99")
    assert all(f"{v} (" in str(caught.value) for v in INSTALLED)


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["run", "x.spec", "--pg-version", "99"], "--pg-version 99: no PostgreSQL 99"),
        (["run", "x.spec", "--pg-version", "x"], "--pg-version: expected a PostgreSQL major"),
        (["run", "x.spec", "--pg-version", "15", "--dsn", DSN], "and --dsn gives the server"),
        (["run", "x.spec", "--pg-version", "15", "--pg", "docker"], "--pg docker gives"),
        (["run", "x.spec", "--pg-version", "15", "--pg", "dsn"], "--pg dsn gives"),
        (["explore", "--store", "token", "--pg-version", "99"], "no PostgreSQL 99"),
        (["explore", "x.spec", "--pg-version", "99"], "no PostgreSQL 99"),
        (["bench", "spec", "--pg-version", "15", "--dsn", DSN], "--dsn gives the server"),
    ],
)
def test_a_version_that_cannot_be_had_is_refused(
    argv: list[str], said: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    spec = tmp_path / "x.spec"
    spec.write_text(VERSION_SPEC)
    (tmp_path / "x.spec.toml").write_text('[invariants]\nnone = "SELECT 1 WHERE false"\n')
    argv = [str(spec) if a == "x.spec" else a for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert said in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    if "no PostgreSQL 99" in said:
        assert all(f"{v} (" in err for v in INSTALLED)


def test_the_environment_version_with_a_dsn_is_refused(tmp_path: Path) -> None:
    spec = tmp_path / "v.spec"
    spec.write_text(VERSION_SPEC)
    env = {**os.environ, "RACESIM_PG_VERSION": "15", "RACESIM_DSN": DSN}
    done = subprocess.run(
        [sys.executable, "-m", "racesim.cli.main", "run", str(spec)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )
    assert done.returncode == 2, done.stderr
    assert "RACESIM_PG_VERSION: picks the server" in done.stderr


@pytest.mark.parametrize("version", INSTALLED)
def test_each_command_runs_on_the_version_asked_for(
    version: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "v.spec"
    spec.write_text(VERSION_SPEC)
    assert main(["run", str(spec), "--pg-version", str(version)]) == 0
    assert f"\n   {version}\n(1 row)" in capsys.readouterr().out
    scenario = ROOT / "scenarios" / "jobqueue" / "double-claim.toml"
    assert main(["run", str(scenario), "--pg-version", str(version)]) == 0


def test_the_plugin_takes_the_version_from_option_ini_and_environment(tmp_path: Path) -> None:
    if len(INSTALLED) < 2:
        pytest.skip("one PostgreSQL version on this machine")
    low, high = INSTALLED[0], INSTALLED[-1]
    (tmp_path / "test_x.py").write_text(
        "import os\n\ndef test_x(racesim_server):\n"
        "    assert racesim_server.version == int(os.environ['WANT'])\n"
    )

    def run(*args: str, ini: str = "", **env: str) -> subprocess.CompletedProcess[str]:
        (tmp_path / "pytest.ini").write_text(f"[pytest]\n{ini}")
        base = {k: v for k, v in os.environ.items() if k not in ("RACESIM_DSN",)}
        return subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "0", *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env={**base, **env},
        )

    done = run("test_x.py", RACESIM_PG_VERSION=str(high), WANT=str(high))
    assert done.returncode == 0, done.stdout + done.stderr
    done = run("test_x.py", ini=f"racesim_pg_version = {low}\n", WANT=str(low))
    assert done.returncode == 0, done.stdout + done.stderr
    done = run(
        f"--racesim-pg-version={high}",
        "test_x.py",
        ini=f"racesim_pg_version = {low}\n",
        WANT=str(high),
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_version_asked_for_does_not_outlive_the_test() -> None:
    assert "RACESIM_PG_VERSION" not in os.environ


def test_the_plugin_names_where_a_missing_version_came_from(tmp_path: Path) -> None:
    (tmp_path / "test_x.py").write_text("def test_x(racesim_server):\n    pass\n")
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    env = {k: v for k, v in os.environ.items() if k not in ("RACESIM_DSN", "RACESIM_PG_VERSION")}
    done = subprocess.run(
        [*PYTEST, "--racesim-pg-version=99", "test_x.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "--racesim-pg-version 99: no PostgreSQL 99 server binaries" in output
    assert "Traceback" not in output
