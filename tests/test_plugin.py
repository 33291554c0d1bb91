"""The pytest plugin, used from a user's own test file (run in a subprocess)."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.parse
from pathlib import Path

from commands import pytest_run

from racesim.provision.databases import Databases

ROOT = Path(__file__).resolve().parent.parent

USER_TESTS = """
from datetime import timedelta
from racesim.model.plan import Actor, Plan, Step

def test_scenario_file(race):
    result = race(r"{scenario}", store="legacy")
    assert result.verdict.matches
    assert result.verdict.violations[0].invariant == "no-foreign-clear"

def test_plan(race, racesim_seed):
    plan = Plan(
        (Actor("cron", "cron"), Actor("cron2", "cron")),
        (Step("cron", "mark"), Step("cron2", "mark"), Step("cron2", "collect"),
         Step("cron2", "upsert_recommendations"), Step("cron2", "clear")),
    )
    assert racesim_seed == 11
    assert not race(plan, store="token").verdict.violations
    assert race(plan, store="legacy").verdict.violations

def test_fresh_database(racesim_db):
    assert "dbname=" in racesim_db
"""


def test_plugin_fixtures_in_a_user_test(racesim_databases: Databases, tmp_path: Path) -> None:
    scenario = ROOT / "scenarios" / "t0-t4-cron-wipes-user.toml"
    (tmp_path / "test_user.py").write_text(USER_TESTS.replace("{scenario}", str(scenario)))
    done = pytest_run(
        tmp_path,
        racesim_databases.server.conninfo(),
        "--racesim-seed=11",
        "--racesim-profile=ci",
        "test_user.py",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 passed" in done.stdout


def test_bad_seed_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "test_x.py").write_text("def test_x():\n    pass\n")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-n", "0", "--racesim-seed=abc", "test_x.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 4
    assert "--racesim-seed: expected a whole number" in done.stderr


def test_a_failing_dsn_names_the_option_and_never_shows_the_password(tmp_path: Path) -> None:
    (tmp_path / "test_x.py").write_text("def test_x(racesim_db):\n    pass\n")
    secret = "QJX&\"' %@VKW"
    dsn = f"postgresql://rs:{urllib.parse.quote(secret, safe='')}@/db?host=/nonexistent-racesim-dir"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-n", "0", f"--racesim-dsn={dsn}", "test_x.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "1 error" in output
    assert "--racesim-dsn: cannot connect" in output
    assert "dsn = " not in output and "Traceback" not in output
    assert "QJX" not in output and "VKW" not in output and "%40" not in output


def test_settings_come_from_the_environment_after_options_and_ini(tmp_path: Path) -> None:
    """``--racesim-seed`` beats ``racesim_seed`` in the ini file, which beats
    ``RACESIM_SEED``; a DSN from ``RACESIM_DSN`` is named by it in errors."""
    (tmp_path / "test_x.py").write_text(
        "import os\n\ndef test_x(racesim_seed):\n    assert racesim_seed == int(os.environ['WANT'])\n"
    )

    def run(*args: str, ini: str = "", **env: str) -> subprocess.CompletedProcess[str]:
        (tmp_path / "pytest.ini").write_text(f"[pytest]\n{ini}")
        return subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "0", *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={**os.environ, **env},
        )

    assert run("test_x.py", RACESIM_SEED="7", WANT="7").returncode == 0
    assert run("test_x.py", ini="racesim_seed = 5\n", RACESIM_SEED="7", WANT="5").returncode == 0
    done = run("--racesim-seed=3", "test_x.py", ini="racesim_seed = 5\n", WANT="3")
    assert done.returncode == 0, done.stdout + done.stderr
    (tmp_path / "test_x.py").write_text("def test_x(racesim_db):\n    pass\n")
    done = run("test_x.py", RACESIM_DSN="postgresql://rs@/db?host=/nonexistent-racesim-dir")
    assert done.returncode == 1
    assert "RACESIM_DSN: cannot connect" in done.stdout + done.stderr
