"""racesim and pytest run in a child process, as a user runs them, and a throwaway
server whose roles log in with a password (for the tests that pass one in a DSN)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from racesim.provision.binaries import find_binaries
from racesim.provision.cluster import Cluster, server_user


@contextmanager
def started_racesim(
    name: str, tmp_path: Path, args: list[str], **popen: Any
) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    """``racesim ARGS`` started, not waited for, with a run directory of its own
    (``RACESIM_RUN_DIR``, on tmpfs when it can be) to watch; its stderr is piped.
    Afterwards the process is gone and the directory removed."""
    runs = Path("/dev/shm" if os.access("/dev/shm", os.W_OK) else tmp_path) / (
        f"racesim-test-{name}-{os.getpid()}"
    )
    runs.mkdir(mode=0o755)
    proc: subprocess.Popen[str] | None = None
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "racesim.cli.main", *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "RACESIM_RUN_DIR": str(runs)},
            **popen,
        )
        yield proc, runs
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.communicate()
        shutil.rmtree(runs, ignore_errors=True)


def racesim(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``racesim ARGS`` with this environment plus ``env``, and nothing on its stdin."""
    return subprocess.run(
        [sys.executable, "-m", "racesim.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
    )


def pytest_run(
    where: Path, dsn: str, *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``pytest ARGS`` in ``where``, on one process, its databases on the server at ``dsn``."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-n",
            "0",
            f"--racesim-dsn={dsn}",
            *args,
        ],
        cwd=where,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@contextmanager
def password_cluster(roles: Mapping[str, str]) -> Iterator[Cluster]:
    """A cluster where each role of ``roles`` logs in over the socket with its password
    (and may create databases); only the cluster's own superuser needs none."""
    user = server_user()
    folder = Path(tempfile.mkdtemp(prefix="racesim-hba-"))
    hba = folder / "pg_hba.conf"
    me = "postgres" if user.run_uid is not None else os.environ.get("USER", "root")
    hba.write_text(f"local all {me} trust\nlocal all all scram-sha-256\n")
    folder.chmod(0o755)
    hba.chmod(0o644)
    try:
        with Cluster(find_binaries(), settings={"hba_file": str(hba)}) as cluster:
            with psycopg.connect(cluster.conninfo(), autocommit=True) as conn:
                for role, password in roles.items():
                    conn.execute(
                        sql.SQL("CREATE ROLE {} LOGIN CREATEDB PASSWORD {}").format(
                            sql.Identifier(role), sql.Literal(password)
                        )
                    )
            yield cluster
    finally:
        shutil.rmtree(folder, ignore_errors=True)
