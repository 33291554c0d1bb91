"""As root, racesim runs its servers as an OS account of its own, which reads nothing of
the machine's own PostgreSQL."""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from racesim.provision import account
from racesim.provision.binaries import find_binaries
from racesim.provision.cluster import Cluster

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="only a root racesim switches accounts")


def _status(pid: int, field: str) -> list[str]:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return line.split()[1:]
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def _from_program(conn: psycopg.Connection[Any], command: str) -> str:
    """What ``command`` prints when a superuser runs it with COPY FROM PROGRAM."""
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS out (line text)")
    conn.execute("TRUNCATE out")
    conn.execute(sql.SQL("COPY out FROM PROGRAM {}").format(sql.Literal(command)))
    return "\n".join(row[0] for row in conn.execute("SELECT line FROM out").fetchall())


@pytest.fixture
def postgres_only_file() -> Iterator[Path]:
    """A file only the ``postgres`` account may read, like its data directory's files."""
    try:
        postgres = pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("no 'postgres' account on this machine")
    folder = Path(tempfile.mkdtemp(prefix="racesim-test-account-"))
    folder.chmod(0o755)
    secret = folder / "secret"
    secret.write_text("the machine's own data\n")
    os.chown(secret, postgres.pw_uid, postgres.pw_gid)
    secret.chmod(0o600)
    yield secret
    shutil.rmtree(folder, ignore_errors=True)


def test_the_server_runs_as_racesims_own_account(postgres_only_file: Path) -> None:
    with Cluster(find_binaries()) as cluster:
        own = pwd.getpwnam(account.ACCOUNT)  # created when it was missing
        assert cluster.pid is not None
        uids = {int(uid) for uid in _status(cluster.pid, "Uid")}
        assert uids == {own.pw_uid} and own.pw_uid not in (0, pwd.getpwnam("postgres").pw_uid)
        assert _status(cluster.pid, "Groups") == []  # no supplementary groups
        assert {int(gid) for gid in _status(cluster.pid, "Gid")} == {own.pw_gid}
        with psycopg.connect(cluster.conninfo(), autocommit=True) as conn:
            assert _from_program(conn, "id -un") == account.ACCOUNT
            assert _from_program(conn, "id -Gn") == account.ACCOUNT
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("SELECT pg_read_file(%s)", [str(postgres_only_file)])
            with pytest.raises(psycopg.errors.ExternalRoutineException):
                _from_program(conn, f"cat {postgres_only_file}")
            machine = Path("/var/lib/postgresql")
            for version in sorted(machine.glob("*/main")) if machine.is_dir() else []:
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute("SELECT pg_ls_dir(%s)", [str(version)])
    assert own.pw_shell == "/usr/sbin/nologin" or own.pw_shell.endswith("/false")
    assert own.pw_dir == "/nonexistent" and not os.path.exists(own.pw_dir)
    assert grp.getgrgid(own.pw_gid).gr_name == account.ACCOUNT


def _exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def test_a_missing_account_is_created_as_a_system_account_without_login() -> None:
    name = f"rstest{os.getpid() % 100000}"
    assert not _exists(name)
    try:
        user = account.ensure_account(name)
        entry = pwd.getpwnam(name)
        assert (user.name, user.uid, user.gid, user.groups) == (
            name,
            entry.pw_uid,
            entry.pw_gid,
            (),
        )
        assert user.switch and entry.pw_uid != 0 and entry.pw_uid < 1000  # a system account
        assert entry.pw_shell == "/usr/sbin/nologin"
        assert entry.pw_dir == "/nonexistent" and not os.path.exists("/nonexistent")
        assert grp.getgrgid(entry.pw_gid).gr_name == name
        assert account.ensure_account(name) == user  # found, not made again
    finally:
        if _exists(name):
            subprocess.run(["userdel", name], check=True, capture_output=True)
        if name in {g.gr_name for g in grp.getgrall()}:
            subprocess.run(["groupdel", name], check=False, capture_output=True)
