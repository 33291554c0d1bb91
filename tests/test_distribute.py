"""racesim explore --workers N / --tx SPEC: one search spread over execnet gateways
(local popen processes and a socket gateway this test starts), counterexamples
merged, and a worker lost mid-search reported with its part run again or named
as not searched."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import execnet
import pytest
from commands import racesim

from racesim.explore.distribute import gateway_specs, parts
from racesim.explore.parts import NODES_PER_WORKER, subtree_parts
from racesim.explore.run import ExploreOptions
from racesim.provision.provide import Server

SOCKETSERVER = Path(execnet.__file__).parent / "script" / "socketserver.py"
JOBQUEUE = ["--system", "jobqueue", "--strategy", "exhaustive"]


@pytest.mark.fast
def test_gateway_specs() -> None:
    assert gateway_specs(2, None) == ["popen", "popen"]
    assert gateway_specs(None, ["2*popen", "socket=127.0.0.1:8888", "ssh=ci-2"]) == [
        "popen",
        "popen",
        "socket=127.0.0.1:8888",
        "ssh=ci-2",
    ]
    assert gateway_specs(None, None) == []


@pytest.mark.fast
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--workers", "0"], "--workers: expected 1 to 256"),
        (["--tx", "bogus"], "--tx: expected an execnet gateway"),
        (["--tx", "socket=nohost"], "--tx: expected an execnet gateway"),
        (["--tx", "0*popen"], "--tx: expected K*SPEC"),
    ],
)
def test_bad_worker_options_are_refused(args: list[str], message: str, tmp_path: Path) -> None:
    done = racesim("explore", "--store", "model", "--out", str(tmp_path), *args)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr


@pytest.mark.fast
def test_parts_are_disjoint_shards_or_seeds() -> None:
    opts = ExploreOptions(store="model", strategy="exhaustive", shard=(2, 3), max_examples=16)
    split = parts(opts, 2)  # 4 shards per worker
    assert [p.options["shard"] for p in split] == [[2 + 3 * j, 24] for j in range(8)]
    assert [p.options["max_examples"] for p in split] == [2] * 8
    # Shard K/N cut into M parts: each schedule prefix index lands in exactly one part,
    # and only the indices of shard K/N land in any.
    for index in range(500):
        owners = [p for p in split if index % 24 == p.options["shard"][0] - 1]
        assert len(owners) == (1 if index % 3 == 1 else 0)
    seeded = parts(ExploreOptions(store="model", strategy="hypothesis", seed=7), 3)
    assert [p.options["seed"] for p in seeded] == [7, 8, 9]
    assert all(p.options["max_examples"] == 67 for p in seeded)  # ceil(200 / 3), profile dev


@pytest.mark.fast
def test_an_unsharded_exhaustive_search_starts_with_its_split() -> None:
    [first] = parts(ExploreOptions(store="model", strategy="exhaustive", clock_moves=1), 3)
    assert first.label == "split" and first.options["split"] == NODES_PER_WORKER * 3
    assert first.options["clock_moves"] == 1 and first.options["subtree"] is None
    made = subtree_parts(first, [{"variant": 0, "frames": []}] * 2, 1)
    assert [(p.index, p.label) for p in made] == [(1, "subtree 1/2"), (2, "subtree 2/2")]
    assert all(p.options["split"] == 0 and p.options["subtree"] for p in made)


def _subtrees(text: str) -> int:
    """How many subtrees the split made, by the search's last line."""
    found = re.search(r"of the split and (\d+) disjoint subtrees", text)
    if found is None:
        found = re.search(r"in (\d+) parts on", text)
        assert found is not None, text
        return int(found.group(1)) - 1
    return int(found.group(1))


@pytest.mark.fast
def test_popen_workers_merge_counterexamples_and_their_pages(
    pg_server: Server, tmp_path: Path
) -> None:
    dsn = pg_server.conninfo()
    out = tmp_path / "out"
    done = racesim(
        "explore", *JOBQUEUE, "--store", "naive", "--config", "2workers",
        "--workers", "2", "--dsn", dsn, "--out", str(out), "--html", "--export-spec",
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert "worker 1 (popen): ready" in done.stdout and "worker 2 (popen): ready" in done.stdout
    count = _subtrees(done.stdout)
    assert count >= 2 * NODES_PER_WORKER and "split: " in done.stdout
    assert all(f"subtree {k}/{count}:" in done.stdout for k in range(1, count + 1))
    # Several subtrees find both violations; one file per violation is kept.
    saved = sorted(out.glob("*.toml"))
    assert len(saved) == 2, saved
    assert "found 2 violation(s)" in done.stdout.splitlines()[-1]
    assert f"in {count + 1} parts on 2 worker(s)" in done.stdout
    for path in saved:
        assert f"== {path}" in done.stdout  # its timeline, under its saved name
        # what the worker wrote beside it comes back too
        assert f"page: {path.with_suffix('.html')}" in done.stdout
        assert f"as a .spec: {path.with_suffix('.spec')}" in done.stdout
        assert path.with_suffix(".html").is_file() and path.with_suffix(".spec").is_file()
        again = racesim("replay", str(path), "--dsn", dsn)
        assert again.returncode == 1, again.stdout + again.stderr
        assert "reproduced: one-holder" in again.stdout


def test_exhaustive_subtrees_are_the_search(pg_server: Server, tmp_path: Path) -> None:
    dsn = pg_server.conninfo()
    whole = racesim(
        "explore", *JOBQUEUE, "--store", "skiplocked", "--config", "2workers",
        "--dsn", dsn, "--out", str(tmp_path),
    )  # fmt: skip
    spread = racesim(
        "explore", *JOBQUEUE, "--store", "skiplocked", "--config", "2workers",
        "--workers", "2", "--dsn", dsn, "--out", str(tmp_path),
    )  # fmt: skip
    assert whole.returncode == 0 and spread.returncode == 0, spread.stdout + spread.stderr
    count = int(whole.stdout.split("all ")[1].split()[0])
    last = spread.stdout.splitlines()[-1]
    assert last.startswith(f"exhaustive: all {count} schedules of the split and "), last
    # the same moves and faults as the whole search, summed over the parts
    assert last.endswith(whole.stdout.splitlines()[-1].split("; exhaustive: ")[1]), last


@contextmanager
def socket_gateway(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """execnet's own socketserver.py on a free port of 127.0.0.1, in a session of its own."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-u", str(SOCKETSERVER), f"127.0.0.1:{port}"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if time.monotonic() > deadline or server.poll() is not None:
                pytest.fail("execnet's socketserver.py did not start")
            time.sleep(0.1)
        yield f"socket=127.0.0.1:{port}", server
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
        server.wait()


def test_a_socket_gateway_takes_a_share(pg_server: Server, tmp_path: Path) -> None:
    with socket_gateway(tmp_path) as (spec, _server):
        done = racesim(
            "explore", "--system", "jobqueue", "--store", "naive", "--config", "2workers",
            "--strategy", "hypothesis", "--max-examples", "20", "--seed", "3",
            "--tx", "popen", "--tx", spec, "--dsn", pg_server.conninfo(),
            "--out", str(tmp_path / "out"),
        )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"worker 2 ({spec}): ready" in done.stdout
    assert "seed 3:" in done.stdout and "seed 4:" in done.stdout
    assert "found 2 violation(s)" in done.stdout.splitlines()[-1]


def _explore_until_ready(args: list[str], spec: str) -> tuple[subprocess.Popen[str], list[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "racesim.cli.main", "explore", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if f"({spec}): ready" in line:
            return proc, seen
    proc.wait()
    pytest.fail("the socket worker never came up:\n" + "".join(seen))


def test_a_lost_worker_part_runs_again(pg_server: Server, tmp_path: Path) -> None:
    with socket_gateway(tmp_path) as (spec, server):
        proc, seen = _explore_until_ready(
            [*JOBQUEUE, "--store", "skiplocked", "--config", "crash", "--clock-moves", "0",
             "--tx", "popen", "--tx", spec, "--dsn", pg_server.conninfo(),
             "--out", str(tmp_path / "out")],
            spec,
        )  # fmt: skip
        time.sleep(2)  # mid-part: a part of this search runs for seconds
        os.killpg(server.pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=900)
    text = "".join(seen) + out
    assert proc.returncode == 0, text + err
    lost = re.search(rf"worker 2 \({spec}\): lost during (split|subtree \d+/\d+) .*; it runs", text)
    assert lost is not None, text
    assert f"worker 1 (popen): {lost.group(1)}:" in text  # its part, run again
    count = _subtrees(text)
    assert all(f"subtree {k}/{count}:" in text for k in range(1, count + 1))
    last = text.splitlines()[-1]
    assert "exhaustive: all " in last and "1 worker(s) lost, their parts run again" in last


def test_a_part_no_worker_finishes_is_named(pg_server: Server, tmp_path: Path) -> None:
    with socket_gateway(tmp_path) as (spec, server):
        proc, seen = _explore_until_ready(
            [*JOBQUEUE, "--store", "skiplocked", "--config", "crash", "--clock-moves", "0",
             "--tx", spec, "--dsn", pg_server.conninfo(), "--out", str(tmp_path / "out")],
            spec,
        )  # fmt: skip
        time.sleep(1)
        os.killpg(server.pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=300)
    text = "".join(seen) + out
    assert proc.returncode == 4, text + err
    last = text.splitlines()[-1]
    assert "search incomplete: NOT searched: " in last and "(worker 1 (" in last, last
    named = re.search(r"NOT searched: subtree \d+/(\d+) ", last)
    if named is None:  # the split was lost: no subtree was ever made, the split is named
        assert "NOT searched: split (worker 1 (" in last, last
    else:  # lost after the split: every subtree is named
        count = int(named.group(1))
        assert all(f"subtree {k}/{count} (" in last for k in range(1, count + 1)), last
    assert "exhaustive: all" not in text


def test_a_budget_bounds_the_whole_spread_search(pg_server: Server, tmp_path: Path) -> None:
    started = time.monotonic()
    done = racesim(
        "explore", *JOBQUEUE, "--store", "skiplocked", "--config", "crash", "--workers", "2",
        "--budget", "3s", "--dsn", pg_server.conninfo(), "--out", str(tmp_path),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    last = done.stdout.splitlines()[-1]
    assert last.startswith("budget spent after ") and "search incomplete" in last, last
    assert "NOT searched" not in last  # parts the budget left unstarted are no lost work
    assert time.monotonic() - started < 60


def test_pct_splits_seeds_and_schedules(pg_server: Server, tmp_path: Path) -> None:
    done = racesim(
        "explore", "--system", "jobqueue", "--store", "naive", "--config", "2workers",
        "--strategy", "pct", "--max-examples", "30", "--workers", "2",
        "--dsn", pg_server.conninfo(), "--out", str(tmp_path),
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    parts = [line for line in done.stdout.splitlines() if ": seed " in line]
    assert {p.split(": seed ")[1].split(":")[0] for p in parts} == {"0", "1"}
    assert "in 2 parts on 2 worker(s)" in done.stdout.splitlines()[-1]


def test_max_examples_bounds_the_whole_spread_exhaustive_search(
    pg_server: Server, tmp_path: Path
) -> None:
    """Each part gets a share of what no other part has: together at most 30."""
    done = racesim(
        "explore", *JOBQUEUE, "--store", "skiplocked", "--config", "2workers",
        "--max-examples", "30", "--workers", "2", "--dsn", pg_server.conninfo(),
        "--out", str(tmp_path),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    last = done.stdout.splitlines()[-1]
    assert last.startswith("--max-examples reached after "), last
    assert 20 <= int(last.split("after ")[1].split()[0]) <= 30, last
    assert "search incomplete" in last and "NOT searched" not in last
    assert "part(s) not started: --max-examples reached" in last
