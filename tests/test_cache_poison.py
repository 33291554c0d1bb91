"""A run's SQL, run as its cluster's superuser, cannot change what a later run starts from.

Each attack is what a spec's SQL can do: write files as the server's OS user with
``COPY ... TO 'file'`` and ``COPY ... TO PROGRAM``, and ``ALTER SYSTEM``. It is aimed
at the run's own data directory and at every data directory in racesim's cache; the
next run must start as if nothing happened.
"""

from __future__ import annotations

import os
import pwd
import shutil
import site
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from commands import racesim
from psycopg import sql

from racesim.provision.binaries import Binaries, find_binaries
from racesim.provision.cluster import Cluster

REPO = Path(__file__).resolve().parent.parent
SPEC = REPO / "tests" / "specs" / "double-booking.spec"


@pytest.fixture
def cache_dir() -> Iterator[Path]:
    """A cache of this test's own, in a folder the server's user can traverse."""
    folder = Path(tempfile.mkdtemp(prefix="racesim-test-poison-", dir="/dev/shm"))
    folder.chmod(0o1777)  # like /dev/shm: the server's user may leave a marker here
    yield folder / "cache"
    shutil.rmtree(folder, ignore_errors=True)


def _data_dirs(root: Path) -> list[Path]:
    """Every PostgreSQL data directory under ``root`` (racesim's cache), found as root."""
    return sorted(p.parent for p in root.rglob("PG_VERSION") if (p.parent / "global").is_dir())


def _attempt(conn: psycopg.Connection[Any], query: sql.Composable) -> bool:
    """Run ``query``; whether the server let it through."""
    try:
        conn.execute(query)
    except psycopg.Error:
        return False
    return True


def _write_line(conn: psycopg.Connection[Any], path: Path, line: str) -> None:
    """Write ``line`` into ``path`` as the server's user: COPY TO, then a shell through
    COPY TO PROGRAM that first tries to make the file writable."""
    _attempt(
        conn,
        sql.SQL("COPY (SELECT {}) TO {}").format(sql.Literal(line), sql.Literal(str(path))),
    )
    shell = (
        f"chmod -R u+w {path.parent} 2>/dev/null; "
        f'grep -qxF "{line}" {path} 2>/dev/null || echo "{line}" >> {path}'
    )
    _attempt(conn, sql.SQL("COPY (SELECT 1) TO PROGRAM {}").format(sql.Literal(shell)))


def _poison(conn: psycopg.Connection[Any], targets: list[Path], attack: str, marker: Path) -> None:
    for data in targets:
        auto = data / "postgresql.auto.conf"
        if attack == "settings":
            _write_line(conn, auto, "work_mem = '7777kB'")
        elif attack == "restore_command":
            _write_line(conn, auto, f"restore_command = 'touch {marker}'")
            _write_line(conn, data / "recovery.signal", "")
        elif attack == "read_only":
            _write_line(conn, auto, "default_transaction_read_only = on")
    if attack == "read_only":
        conn.execute("ALTER SYSTEM SET default_transaction_read_only = on")
        row = conn.execute("SHOW data_directory").fetchone()
        assert row is not None
        own = Path(row[0]) / "postgresql.auto.conf"
        for data in targets:
            copy = f"cp {own} {data / 'postgresql.auto.conf'}"
            _attempt(conn, sql.SQL("COPY (SELECT 1) TO PROGRAM {}").format(sql.Literal(copy)))
    conn.execute("SELECT pg_reload_conf()")


def _unaffected(cluster: Cluster, marker: Path) -> None:
    with psycopg.connect(cluster.conninfo(), autocommit=True) as conn:
        settings = {
            name: conn.execute(sql.SQL("SHOW {}").format(sql.Identifier(name))).fetchone()
            for name in ("work_mem", "default_transaction_read_only", "restore_command")
        }
        assert settings == {
            "work_mem": ("4MB",),
            "default_transaction_read_only": ("off",),
            "restore_command": ("",),
        }
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (False,)
        conn.execute("CREATE TABLE written (id int)")  # a write works
    assert not marker.exists(), "a shell command planted by an earlier run ran at start"


def _attack_from_a_run(binaries: Binaries, cache_dir: Path, attack: str, marker: Path) -> None:
    """Start a cluster on ``cache_dir`` and aim ``attack`` at its data directory and the
    cache's."""
    with (
        Cluster(binaries, cache_dir=cache_dir) as first,
        psycopg.connect(first.conninfo(), autocommit=True) as conn,
    ):
        row = conn.execute("SHOW data_directory").fetchone()
        assert row is not None
        targets = [Path(row[0]), *_data_dirs(cache_dir)]
        assert len(targets) >= 2  # the run's own and the cached one
        _poison(conn, targets, attack, marker)


@pytest.mark.parametrize("attack", ["settings", "restore_command", "read_only"])
def test_a_run_cannot_poison_the_cluster_a_later_run_starts_from(
    cache_dir: Path, attack: str
) -> None:
    binaries = find_binaries()
    marker = cache_dir.parent / "restore-command-ran"
    _attack_from_a_run(binaries, cache_dir, attack, marker)
    with Cluster(binaries, cache_dir=cache_dir) as later:
        _unaffected(later, marker)
    with Cluster(binaries, cache_dir=cache_dir) as third:
        _unaffected(third, marker)


def test_a_later_racesim_run_of_a_spec_is_unaffected(cache_dir: Path) -> None:
    binaries = find_binaries()
    _attack_from_a_run(binaries, cache_dir, "read_only", cache_dir.parent / "unused")
    done = racesim("run", str(SPEC), env={"RACESIM_CACHE_DIR": str(cache_dir)})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and "read-only" not in done.stdout


def _entry(cache_dir: Path) -> Path:
    [entry] = cache_dir.glob("pgdata-*")
    return entry


@pytest.mark.parametrize(
    "change",
    ["append", "new file", "chmod", "replace", "remove file"],
)
def test_a_cached_data_directory_changed_in_any_way_is_rebuilt_not_used(
    cache_dir: Path, change: str
) -> None:
    binaries = find_binaries()
    with Cluster(binaries, cache_dir=cache_dir) as first:
        assert first.initdb_ran
    data = _entry(cache_dir) / "data"
    auto = data / "postgresql.auto.conf"
    # As root, past every permission: what a write that got through would leave.
    if change == "append":
        with open(auto, "a") as f:
            f.write("work_mem = '7777kB'\n")
    elif change == "new file":
        (data / "recovery.signal").write_text("")
    elif change == "chmod":
        os.chmod(auto, 0o666)
    elif change == "replace":
        text = auto.read_text()
        auto.unlink()
        auto.write_text(text)
    elif change == "remove file":
        (data / "PG_VERSION").unlink()
    with Cluster(binaries, cache_dir=cache_dir) as later:
        assert later.initdb_ran  # rebuilt
        _unaffected(later, cache_dir.parent / "unused")
    with Cluster(binaries, cache_dir=cache_dir) as again:
        assert not again.initdb_ran  # and the rebuilt entry is used


@pytest.mark.parametrize("layout", ["no manifest", "server's own data"])
def test_an_entry_laid_out_by_an_older_racesim_is_rebuilt(cache_dir: Path, layout: str) -> None:
    """An older racesim kept no manifest and gave the data to the server's user (who
    could then change it); such an entry under the current name is made again."""
    binaries = find_binaries()
    with Cluster(binaries, cache_dir=cache_dir) as first:
        user = first.user
    entry = _entry(cache_dir)
    if layout == "no manifest":
        (entry / "manifest").unlink()
    else:
        for folder, dirs, files in os.walk(entry / "data"):
            for name in [folder, *(os.path.join(folder, n) for n in dirs + files)]:
                os.lchown(name, user.uid, user.gid)
                os.chmod(name, 0o700 if os.path.isdir(name) else 0o600)
    with Cluster(binaries, cache_dir=cache_dir) as later:
        assert later.initdb_ran
        _unaffected(later, cache_dir.parent / "unused")
    assert [p.name for p in cache_dir.glob("pgdata-*")] == [entry.name]
    assert not list(cache_dir.glob("tmp-*"))


NON_ROOT = """
import os, site, sys
for folder in os.environ["RACESIM_SITE"].split(os.pathsep):
    site.addsitedir(folder)
from pathlib import Path
import psycopg
from psycopg import sql
from racesim.provision.cluster import Cluster

cache = Path(sys.argv[1])
line = sql.Literal("work_mem = '7777kB'")
with Cluster(cache_dir=cache) as first, psycopg.connect(first.conninfo(), autocommit=True) as conn:
    [data] = [p.parent for p in cache.rglob("PG_VERSION") if (p.parent / "global").is_dir()]
    auto = data / "postgresql.auto.conf"
    try:
        conn.execute(sql.SQL("COPY (SELECT {}) TO {}").format(line, sql.Literal(str(auto))))
        print("copy-to: written")
    except psycopg.Error:
        print("copy-to: refused")
    shell = f"chmod -R u+w {data} && echo \\"work_mem = '7777kB'\\" >> {auto}"
    conn.execute(sql.SQL("COPY (SELECT 1) TO PROGRAM {}").format(sql.Literal(shell)))
    print("to-program: written")
with Cluster(cache_dir=cache) as later, psycopg.connect(later.conninfo()) as conn:
    print("later:", later.initdb_ran, conn.execute("SHOW work_mem").fetchone()[0])
"""


def test_as_a_normal_user_the_template_is_read_only_and_a_changed_one_is_rebuilt(
    cache_dir: Path,
) -> None:
    """A normal user's server runs as that user, so a program it starts may undo the
    template's read-only modes; the manifest still catches the change."""
    if os.geteuid() != 0:
        pytest.skip("needs root to run as another user")
    nobody = pwd.getpwnam("nobody")
    python = f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}"
    if not os.access(python, os.X_OK):
        pytest.skip(f"no {python} the other user can run")
    env = {
        "PATH": os.environ["PATH"],
        "HOME": "/nonexistent",
        "RACESIM_SITE": os.pathsep.join(site.getsitepackages()),
    }
    done = subprocess.run(
        [python, "-c", NON_ROOT, str(cache_dir)],
        user=nobody.pw_uid,
        group=nobody.pw_gid,
        extra_groups=[],
        env=env,
        cwd="/",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines() == [
        "copy-to: refused",
        "to-program: written",
        "later: True 4MB",
    ]
