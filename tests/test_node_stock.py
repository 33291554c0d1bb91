"""A race of Node's own: the last item in stock bought by two customers, in Node
with ``pg`` (npm), raced through racesim's proxy (examples/node-stock). The naive
read-then-write oversells and exhaustive search finds it, shrunk to the
interleaving; the guarded single-statement decrement holds in every interleaving."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from toolchains import ROOT, node_pg

from racesim.provision.provide import Server


def _explore(where: Path, store: str, dsn: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "racesim.cli.main",
            "explore",
            "--system",
            "commands:racesim.toml",
            "--store",
            store,
            "--strategy",
            "exhaustive",
            "--out",
            "found",
        ],
        cwd=where,
        env={**os.environ, "RACESIM_DSN": dsn},
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_node_pg_oversell_is_found_and_the_guard_holds(tmp_path: Path, pg_server: Server) -> None:
    where = tmp_path / "node-stock"
    shutil.copytree(
        ROOT / "examples" / "node-stock",
        where,
        ignore=shutil.ignore_patterns("node_modules", "found"),
    )
    node_pg(where)
    naive = _explore(where, "naive", pg_server.conninfo())
    assert naive.returncode == 1, naive.stdout + naive.stderr
    assert "!! no-oversell: the query of no-oversell returns 2 sold of 1 in stock" in naive.stdout
    assert "alice finished: exit 0: alice: sold" in naive.stdout
    assert "bob finished: exit 0: bob: sold" in naive.stdout
    assert list((where / "found").glob("naive-no-oversell-*.toml"))
    guarded = _explore(where, "guarded", pg_server.conninfo())
    assert guarded.returncode == 0, guarded.stdout + guarded.stderr
    assert "exhaustive: all 4 distinct schedules explored, none violates (guarded" in guarded.stdout
