"""Other languages' toolchains for the tests that race real clients through the proxy:
Go with pgx (Debian's packages, built offline in GOPATH mode) and Node with ``pg``
(from npm). Each is installed when missing and the tests run as root on a
Debian-like machine; otherwise the test is skipped with one line saying what to
install, as ``browser.py`` does for chromium.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
GO_MARKER = ROOT / "examples" / "go-marker"
GO_PACKAGES = ("golang-go", "golang-github-jackc-pgx-v4-dev")
PGX = Path("/usr/share/gocode/src/github.com/jackc/pgx/v4")
LOCK = Path("/tmp/racesim-toolchains.lock")


def _apt(packages: tuple[str, ...], why: str) -> None:
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip(f"no {why}: apt-get install {' '.join(packages)}")
    done = subprocess.run(
        [
            "sh",
            "-c",
            f"apt-get install -y -qq {' '.join(packages)} || "
            f"(apt-get update -qq && apt-get install -y -qq {' '.join(packages)})",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:]
        pytest.skip(f"no {why}: apt-get install {' '.join(packages)} failed: {' '.join(tail)}")


def go_marker() -> Path:
    """examples/go-marker with bin/cron and bin/refresh built (Go and pgx installed first)."""
    with LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one install and build at a time across workers
        if not shutil.which("go") or not PGX.is_dir():
            _apt(GO_PACKAGES, "Go with pgx")
        sources = sorted(GO_MARKER.rglob("*.go"))
        built = [GO_MARKER / "bin" / name for name in ("cron", "refresh")]
        newest = max(p.stat().st_mtime for p in sources)
        if not all(b.exists() and b.stat().st_mtime >= newest for b in built):
            done = subprocess.run(
                ["sh", str(GO_MARKER / "build.sh")],
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
            if done.returncode != 0:
                pytest.fail(f"examples/go-marker/build.sh failed:\n{done.stderr}")
    return GO_MARKER


def node_pg(where: Path) -> Path:
    """``where`` with node_modules/pg installed by npm (Node and npm installed first)."""
    with LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not shutil.which("node") or not shutil.which("npm"):
            _apt(("nodejs", "npm"), "Node with npm")
    if not (where / "node_modules" / "pg").is_dir():
        done = subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--silent", "pg@8"],
            cwd=where,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:]
            pytest.skip(f"no node pg: npm install pg failed: {' '.join(tail)}")
    return where
