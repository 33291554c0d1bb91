"""Security: nothing outside racesim's own directories changes; scenario text stays data."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import psycopg
import pytest

from racesim.engine.loop import Options
from racesim.formats.scenario import parse
from racesim.provision.binaries import find_binaries
from racesim.provision.cluster import Cluster, cache_root, run_root
from racesim.provision.databases import Databases
from racesim.runner import run_one

ROOT = Path(__file__).parent.parent


def _ancestors(path: Path) -> list[Path]:
    path = path.resolve()
    return [path, *path.parents]


def _state(paths: list[Path]) -> dict[str, tuple[int, int, int]]:
    out = {}
    for p in paths:
        try:
            st = p.stat()
        except OSError:
            continue
        out[str(p)] = (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)
    return out


@pytest.mark.skipif(os.geteuid() != 0, reason="checks what running as root may touch")
def test_running_as_root_changes_nothing_outside_our_directories() -> None:
    binaries = find_binaries()
    watched = sorted(
        {
            *_ancestors(run_root()),
            *_ancestors(cache_root().parent),
            *_ancestors(binaries.bindir),
            *_ancestors(ROOT),
        }
    )
    accounts = {f: Path(f).read_bytes() for f in ("/etc/passwd", "/etc/group")}
    before = _state(watched)
    with Cluster(binaries) as cluster, psycopg.connect(cluster.conninfo()) as conn:
        conn.execute("SELECT 1")
    assert _state(watched) == before
    assert {f: Path(f).read_bytes() for f in accounts} == accounts


def test_scenario_text_is_never_sql(databases: Databases) -> None:
    evil = "'); DROP TABLE recommendations_state; --"
    scenario = parse(
        f'name = "{evil}"\ndescription = "{evil}"\nstores = ["token"]\n'
        'schedule = ["T+0 user: get_freshness", "T+1 user: mark"]\n\n'
        '[actors]\nuser = { program = "refresh", lock_timeout = 100 }\n\n'
        '[expect]\ntoken = "holds"\n',
        "evil.toml",
    )
    assert scenario.name == evil
    result = run_one(scenario, "token", databases, Options())
    assert result.verdict.matches
    mark = next(e for e in result.outcome.history.events if e.call == "mark")
    assert mark.result.ok  # the table is still there, and the run used it
