"""How fast racesim gets a PostgreSQL: cold start, warm start, fresh database.

Each figure is a median over ``repeat`` runs, compared with its target and with a
baseline measured in the same run by doing the same job by hand:

* cold start (empty cache, so initdb) vs a bare ``initdb`` + ``postgres`` start;
* warm start (cache hit: the template checked against its manifest, then copied
  as the server's user) vs ``cp -a`` of an initdb'ed data dir + a bare ``postgres``;
* fresh database (template clone) vs a bare ``CREATE DATABASE ... TEMPLATE template0``.

Everything happens in a scratch directory (its own cache included), so the user's
cache is untouched. Example::

    for line in run(repeat=3):
        print(line)
"""

from __future__ import annotations

import os
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from racesim import config
from racesim.provision import cleanup, template
from racesim.provision.binaries import Binaries, find_binaries
from racesim.provision.cluster import (
    PORT,
    RUN_PREFIX,
    SUPERUSER,
    Cluster,
    ServerUser,
    run_root,
    server_env,
    server_user,
)
from racesim.provision.databases import Databases
from racesim.provision.provide import Server

__all__ = ["TARGETS_MS", "run"]

TARGETS_MS = {"cold": 1500.0, "warm": 150.0, "fresh": 20.0}


def run(repeat: int = 5, *, prefer: str = "auto") -> list[str]:
    """Measure startup and return report lines (the CLI prints them)."""
    repeat = max(1, repeat)
    binaries = find_binaries(config.value("pg_version") or prefer)
    user = server_user()
    with _scratch(user) as scratch:
        cold = [_cluster_first_query(binaries, _fresh(scratch / "cold")) for _ in range(repeat)]
        cold_base = [_bare_cold(binaries, user, _fresh(scratch / "bare")) for _ in range(repeat)]
        warm_cache = scratch / "warm"
        _cluster_first_query(binaries, warm_cache)  # fill the cache
        warm = [_cluster_first_query(binaries, warm_cache) for _ in range(repeat)]
        cached = next(warm_cache.glob("pgdata-*"))
        password = (cached / "password").read_text()
        # The bare way: cp -a of an initdb'ed directory the server's user owns, with
        # no template to check and no change of owner.
        reference = scratch / "reference"
        template.copy_out(cached / "data", reference, user)
        warm_base = [
            _bare_warm(binaries, user, reference, password, _fresh(scratch / "cp"))
            for _ in range(repeat)
        ]
        _fresh(scratch / "cp")
        fresh, fresh_base = _fresh_databases(binaries, warm_cache, repeat)
    head = (
        f"racesim startup benchmark: PostgreSQL {binaries.full_version} ({binaries.source}, "
        f"{binaries.bindir}), {repeat} run(s) each, medians"
    )
    return [
        head,
        _line(
            "cold start (initdb) to first query", "cold", cold, "bare initdb + postgres", cold_base
        ),
        _line(
            "warm start (cache hit) to first query",
            "warm",
            warm,
            "cp -a + bare postgres",
            warm_base,
        ),
        _line(
            "fresh database (template clone)",
            "fresh",
            fresh,
            "CREATE DATABASE from template0",
            fresh_base,
        ),
    ]


def _line(what: str, key: str, ours: list[float], base_what: str, base: list[float]) -> str:
    ms, base_ms, target = statistics.median(ours), statistics.median(base), TARGETS_MS[key]
    verdict = "ok" if ms <= target else "OVER TARGET"
    return (
        f"  {what}: {ms:.1f} ms (target <= {target:.0f} ms: {verdict}); "
        f"baseline {base_what}: {base_ms:.1f} ms, ratio {ms / base_ms:.2f}x"
    )


def _fresh(path: Path) -> Path:
    """``path``, emptied: leftovers of earlier rounds would skew later figures."""
    shutil.rmtree(path, ignore_errors=True)
    return path


@contextmanager
def _scratch(user: ServerUser) -> Iterator[Path]:
    # Named like a run directory, so a killed benchmark is reaped by the next start.
    path = Path(tempfile.mkdtemp(prefix=f"{RUN_PREFIX}-{os.getpid()}-", dir=run_root()))
    try:
        cleanup.write_owner(path)
        path.chmod(0o755)  # our own dir: the server user must reach the caches inside
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _cluster_first_query(binaries: Binaries, cache: Path) -> float:
    start = time.perf_counter()
    with Cluster(binaries, cache_dir=cache) as cluster:
        with psycopg.connect(cluster.conninfo()) as conn:
            conn.execute("SELECT 1").fetchone()
        return (time.perf_counter() - start) * 1000


def _bare_cold(binaries: Binaries, user: ServerUser, where: Path) -> float:
    where.mkdir()
    user.chown(where)
    start = time.perf_counter()
    subprocess.run(
        [
            str(binaries.tool("initdb")),
            "-D",
            str(where / "data"),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--no-sync",
        ],
        check=True,
        capture_output=True,
        cwd=where,
        env=server_env(),
        user=user.run_uid,
        group=user.run_gid,
        extra_groups=user.run_groups,
    )
    _bare_postgres(binaries, user, where)
    return (time.perf_counter() - start) * 1000


def _bare_warm(
    binaries: Binaries, user: ServerUser, cached: Path, password: str, where: Path
) -> float:
    where.mkdir()
    user.chown(where)
    start = time.perf_counter()
    copy_tree(cached, where / "data")
    _bare_postgres(binaries, user, where, password)
    return (time.perf_counter() - start) * 1000


def _bare_postgres(
    binaries: Binaries, user: ServerUser, where: Path, password: str | None = None
) -> None:
    """Start postgres on ``where/data``, run one query, stop it (stop not timed by callers)."""
    proc = subprocess.Popen(
        [
            str(binaries.tool("postgres")),
            "-D",
            str(where / "data"),
            "-k",
            str(where),
            "-c",
            "listen_addresses=",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=where,
        env=server_env(),
        start_new_session=True,
        user=user.run_uid,
        group=user.run_gid,
        extra_groups=user.run_groups,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with psycopg.connect(
                    host=str(where), port=PORT, user=SUPERUSER, dbname="postgres", password=password
                ) as conn:
                    conn.execute("SELECT 1").fetchone()
                return
            except psycopg.OperationalError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise
            time.sleep(0.002)
    finally:
        proc.send_signal(signal.SIGQUIT)
        proc.wait()


def _fresh_databases(
    binaries: Binaries, cache: Path, repeat: int
) -> tuple[list[float], list[float]]:
    def prepare(conn: psycopg.Connection[Any]) -> None:
        conn.execute("CREATE TABLE bench (id int PRIMARY KEY, note text)")

    with Cluster(binaries, cache_dir=cache) as cluster:
        server = Server(source="local", params=cluster.params, version=cluster.version)
        with Databases(server, prepare, label="bench") as dbs:
            dbs.create()  # makes the template; not what is measured
            ours = []
            for _ in range(repeat):
                start = time.perf_counter()
                dbs.create()
                ours.append((time.perf_counter() - start) * 1000)
        base: list[float] = []
        with psycopg.connect(cluster.conninfo(), autocommit=True) as conn:
            for i in range(repeat):
                name = sql.Identifier(f"bench_bare_{i}")
                start = time.perf_counter()
                conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(name))
                base.append((time.perf_counter() - start) * 1000)
                conn.execute(sql.SQL("DROP DATABASE {}").format(name))
    return ours, base


def copy_tree(source: Path, target: Path) -> None:
    """Copy a data directory keeping owners and modes (``cp -a``)."""
    cp = shutil.which("cp")
    if cp is not None:
        subprocess.run([cp, "-a", str(source), str(target)], check=True)
        return
    shutil.copytree(source, target, symlinks=True)
    st = source.stat()
    for path in [target, *target.rglob("*")]:
        os.lchown(path, st.st_uid, st.st_gid)
