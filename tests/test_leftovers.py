"""Nothing left behind: killed runs leave no server, directory or database of ours."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from commands import started_racesim

from racesim.engine.prepare import preparer
from racesim.provision.databases import Databases
from racesim.provision.provide import Server
from racesim.store.system import SYSTEM

ROOT = Path(__file__).parent.parent


def _our_databases(server: Server) -> set[str]:
    with psycopg.connect(server.conninfo(), autocommit=True) as conn:
        rows = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'racesim%'")
        return {r[0] for r in rows}


def test_databases_of_a_killed_process_are_reaped_at_the_next_start(pg_server: Server) -> None:
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            "import os, signal, sys\n"
            "from racesim.provision.databases import Databases\n"
            "from racesim.provision.provide import provide\n"
            "from racesim.engine.prepare import preparer\n"
            "from racesim.store.system import SYSTEM\n"
            "with provide('dsn', sys.argv[1]) as s:\n"
            "    d = Databases(s, preparer(SYSTEM), label='racesim_victim')\n"
            "    print(d.create(), flush=True)\n"
            "    os.kill(os.getpid(), signal.SIGKILL)\n",
            pg_server.conninfo(),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert child.returncode == -signal.SIGKILL
    orphan = child.stdout.strip()
    assert orphan in _our_databases(pg_server)
    with Databases(pg_server, preparer(SYSTEM), label="racesim_next") as alive:
        alive.create()
        assert orphan not in _our_databases(pg_server)
        # a live owner's databases are never touched
        with Databases(pg_server, preparer(SYSTEM), label="racesim_other") as other:
            other.create()
            assert set(alive._created) <= _our_databases(pg_server)


def _long_scenario_folder(tmp: Path, copies: int) -> Path:
    folder = tmp / "many"
    folder.mkdir()
    source = ROOT / "scenarios" / "t0-t4-cron-wipes-user.toml"
    for i in range(copies):
        shutil.copy(source, folder / f"copy{i:03}.toml")
    return folder


def _postgres_under(path: Path) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if "postgres" in cmd and str(path) in cmd:
                found.append(int(proc.name))
    return found


def _ready(runs: Path) -> bool:
    """A server under ``runs`` has said it takes connections."""
    for pid_file in runs.glob("*/data/postmaster.pid"):
        try:
            lines = pid_file.read_text().splitlines()
        except OSError:
            continue
        if len(lines) > 7 and lines[7].strip() == "ready":
            return True
    return False


def _wait_for(predicate: Callable[[], object], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


COMMANDS = {
    # a long run of scenario files, and an exploration with a budget it will not finish
    "run": lambda tmp: ["run", str(_long_scenario_folder(tmp, 300))],
    "explore": lambda tmp: [
        "explore",
        "--store",
        "token",
        "--strategy",
        "pct",
        "--config",
        "cron+user",
        "--budget",
        "60s",
        "--out",
        str(tmp / "out"),
    ],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL])
def test_killed_command_leaves_nothing(
    command: str, signum: signal.Signals, tmp_path: Path
) -> None:
    name = f"{command}-{signum.name}"
    with started_racesim(name, tmp_path, COMMANDS[command](tmp_path)) as (proc, runs):
        _wait_for(lambda: _ready(runs))  # its cluster is up (killing start-up: test_main.py)
        time.sleep(1.0)  # and it is busy
        assert proc.poll() is None, "finished before it could be killed"
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode != 0
        assert "Traceback" not in err
        _wait_for(lambda: not list(runs.iterdir()) and not _postgres_under(runs), 10)


def test_counterexample_survives_a_kill_right_after_it_is_found(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "racesim.cli.main",
            "explore",
            "--store",
            "legacy",
            "--seed",
            "5",
            "--budget",
            "60s",
            "--out",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for(lambda: out.exists() and any(out.glob("*.toml")))
    finally:
        proc.kill()
        proc.wait()
    saved = next(out.glob("*.toml"))
    replay = subprocess.run(
        [sys.executable, "-m", "racesim.cli.main", "replay", str(saved)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert replay.returncode == 1, replay.stdout + replay.stderr
    assert "reproduced" in replay.stdout


def test_two_racesim_processes_at_once(tmp_path: Path) -> None:
    scenario = str(ROOT / "scenarios" / "two-users-refresh.toml")
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "racesim.cli.main", "run", scenario],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, out + err
        assert "0 did not" in out


def _postmaster_of(proc: subprocess.Popen[str], runs: Path) -> int | None:
    """The pid of the server ``proc`` started under ``runs`` once it takes connections."""
    for pid in _postgres_under(runs):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            lock = next(runs.glob("*/data/postmaster.pid")).read_text().splitlines()
        except (OSError, StopIteration):
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == proc.pid and len(lock) > 7 and lock[7].strip() == "ready":
            return pid
    return None


@pytest.mark.parametrize(
    ("command", "signum"),
    [
        ("explore", signal.SIGKILL),
        ("run", signal.SIGKILL),
        ("explore", signal.SIGQUIT),
        ("run", signal.SIGQUIT),
        # SIGTERM is PostgreSQL's smart shutdown: sessions already open go on, so racesim
        # stops at its next new session (every scenario file opens a database of its own)
        ("run", signal.SIGTERM),
    ],
)
def test_a_killed_postmaster_gives_one_line_and_exit_4(
    command: str, signum: signal.Signals, tmp_path: Path
) -> None:
    name = f"pm-{command}-{signum.name}"
    with started_racesim(name, tmp_path, COMMANDS[command](tmp_path)) as (proc, runs):
        postmaster: list[int] = []
        _wait_for(lambda: postmaster.append(_postmaster_of(proc, runs) or 0) or postmaster[-1])
        time.sleep(1.0)  # racesim is busy with it
        assert proc.poll() is None, "finished before its server could be killed"
        os.kill(postmaster[-1], signum)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 4, err
        [line] = err.splitlines()
        assert line.startswith("racesim: ") and "nothing after that was checked" in line
        _wait_for(lambda: not list(runs.iterdir()) and not _postgres_under(runs), 30)
