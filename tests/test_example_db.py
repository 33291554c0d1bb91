"""racesim explore --example-db redis://HOST:PORT/N: Hypothesis's examples shared
through a real redis-server this test starts, so what one machine found is tried
first by another; refused for strategies that keep no examples."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from commands import racesim

from racesim.provision.provide import Server


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """A redis-server of this test's own on a free port of 127.0.0.1, keeping nothing on disk."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip(
            "no redis-server: install Debian's redis-server package (apt-get install redis-server)"
        )
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
         "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if time.monotonic() > deadline or server.poll() is not None:
                pytest.fail("redis-server did not start")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.fast
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--strategy", "exhaustive"], "--example-db: only the hypothesis strategy"),
        (["--strategy", "pct"], "--example-db: only the hypothesis strategy"),
        (["--strategy", "hypothesis", "--example-db", "http://x"], "expected redis://HOST:PORT/N"),
    ],
)
def test_example_db_is_refused_where_it_cannot_work(
    args: list[str], message: str, tmp_path: Path
) -> None:
    if "--example-db" not in args:
        args = [*args, "--example-db", "redis://127.0.0.1:1/0"]
    done = racesim("explore", "--store", "model", "--out", str(tmp_path), *args)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr


@pytest.mark.fast
def test_an_unreachable_redis_is_refused_with_the_password_hidden(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens there once the probe is closed
    url = f"redis://:s3cret@127.0.0.1:{port}/0"
    done = racesim(
        "explore", "--store", "model", "--strategy", "hypothesis", "--out", str(tmp_path),
        "--example-db", url,
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert "--example-db: cannot reach redis://***@127.0.0.1" in done.stderr
    assert "s3cret" not in done.stderr + done.stdout


def _explore(dsn: str, out: Path, seed: int, *extra: str) -> subprocess.CompletedProcess[str]:
    return racesim(
        "explore", "--system", "jobqueue", "--store", "naive", "--config", "2workers",
        "--strategy", "hypothesis", "--seed", str(seed), "--dsn", dsn, "--out", str(out), *extra,
    )  # fmt: skip


def test_a_failure_found_on_one_machine_is_tried_first_on_another(
    redis_url: str, pg_server: Server, tmp_path: Path
) -> None:
    import redis

    dsn = pg_server.conninfo()
    first = _explore(dsn, tmp_path / "a", 1, "--max-examples", "50", "--example-db", redis_url)
    assert first.returncode == 1, first.stdout + first.stderr
    client = redis.Redis.from_url(redis_url)
    try:
        assert list(client.scan_iter(match="racesim:*"))
    finally:
        client.close()
    # "Another machine": another cache folder, another seed, one example of its own.
    other = tmp_path / "elsewhere"
    other.mkdir()
    env = {"RACESIM_CACHE": str(other / "cache")}
    alone = racesim(
        "explore", "--system", "jobqueue", "--store", "naive", "--config", "2workers",
        "--strategy", "hypothesis", "--seed", "99", "--max-examples", "1",
        "--dsn", dsn, "--out", str(other / "alone"), env=env,
    )  # fmt: skip
    shared = racesim(
        "explore", "--system", "jobqueue", "--store", "naive", "--config", "2workers",
        "--strategy", "hypothesis", "--seed", "99", "--max-examples", "1",
        "--dsn", dsn, "--out", str(other / "shared"), "--example-db", redis_url, env=env,
    )  # fmt: skip
    assert shared.returncode == 1, shared.stdout + shared.stderr
    assert "found " in shared.stdout.splitlines()[-1]
    assert alone.returncode == 0, alone.stdout + alone.stderr  # one fresh example finds nothing


def test_workers_share_the_example_db(redis_url: str, pg_server: Server, tmp_path: Path) -> None:
    done = _explore(
        pg_server.conninfo(), tmp_path / "out", 5, "--max-examples", "20",
        "--workers", "2", "--example-db", redis_url,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert "seed 5:" in done.stdout and "seed 6:" in done.stdout
