"""A DSN role that may not set deadlock_timeout: asked once, said once, never tried."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from racesim.provision.binaries import find_binaries
from racesim.provision.cluster import Cluster
from racesim.provision.privileges import may_set

ROOT = Path(__file__).parent.parent
SCENARIO = str(ROOT / "scenarios" / "maintenance-lock-blocks-mark.toml")


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with Cluster(find_binaries()) as c:
        with psycopg.connect(c.conninfo(), autocommit=True) as conn:
            conn.execute("CREATE ROLE plain LOGIN CREATEDB PASSWORD 'plain-pw'")
        yield c


def _plain(cluster: Cluster) -> str:
    return make_conninfo(cluster.conninfo(), user="plain", password="plain-pw")


def test_may_set_tells_a_superuser_from_a_plain_role(cluster: Cluster) -> None:
    with psycopg.connect(cluster.conninfo()) as conn:
        assert may_set(conn, "deadlock_timeout")
        assert may_set(conn, "statement_timeout")
    with psycopg.connect(_plain(cluster)) as conn:
        assert not may_set(conn, "deadlock_timeout")
        assert may_set(conn, "statement_timeout")
        assert not may_set(conn, "no_such_setting")


def test_a_granted_setting_is_allowed(cluster: Cluster) -> None:
    with psycopg.connect(cluster.conninfo(), autocommit=True) as conn:
        conn.execute("CREATE ROLE granted LOGIN PASSWORD 'granted-pw'")
        conn.execute("GRANT SET ON PARAMETER deadlock_timeout TO granted")
    dsn = make_conninfo(cluster.conninfo(), user="granted", password="granted-pw")
    with psycopg.connect(dsn) as conn:
        assert may_set(conn, "deadlock_timeout")


@pytest.mark.parametrize("form", ["text", "json"])
def test_a_plain_role_is_told_once_and_the_server_logs_no_refusal(
    cluster: Cluster, form: str
) -> None:
    assert cluster.run_dir is not None
    log = cluster.run_dir / "postmaster.log"
    before = log.stat().st_size
    args = [sys.executable, "-m", "racesim.cli.main", "run", SCENARIO, "--store", "token"]
    done = subprocess.run(
        [*args, *(["--json"] if form == "json" else []), "--dsn", _plain(cluster)],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ),
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    notes = [line for line in done.stderr.splitlines() if "deadlock_timeout" in line]
    assert len(notes) == 1, done.stderr
    assert "'plain' may not SET deadlock_timeout" in notes[0]
    assert "GRANT SET ON PARAMETER deadlock_timeout TO plain" in notes[0]
    assert "deadlock_timeout" not in done.stdout  # JSON lines stay JSON
    with open(log, "rb") as f:
        f.seek(before)
        written = f.read().decode(errors="replace")
    assert "permission denied to set parameter" not in written
