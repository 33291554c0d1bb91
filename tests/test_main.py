"""The command's top level: a closed pipe, Ctrl-C at start-up, never a traceback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from commands import started_racesim

from racesim.cli.main import EXIT_INTERRUPTED, EXIT_PIPE

ROOT = Path(__file__).parent.parent
SCENARIO = str(ROOT / "scenarios" / "t0-t4-cron-wipes-user.toml")


def _long_schedule(folder: Path) -> Path:
    """A 10,000-step scenario on the model: about a megabyte of timeline."""
    pollers = "".join(f'u{i} = {{ program = "poll", polls = 1000 }}\n' for i in range(50))
    steps = "".join(f'  "u{i % 50}: get_freshness",\n' for i in range(9998))
    path = folder / "long.toml"
    path.write_text(
        'stores = ["model"]\nschedule = [\n  "T+0 user: get_freshness",\n  "T+1 user: mark",\n'
        f'{steps}]\n\n[actors]\nuser = {{ program = "refresh" }}\n{pollers}\n'
        '[expect]\nmodel = "holds"\n'
    )
    return path


def test_output_into_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    """``racesim run ... | head -1``: the first line, then exit 141 without a word."""
    script = '"$0" -m racesim.cli.main run "$1" | head -1; echo "status ${PIPESTATUS[0]}" >&2'
    done = subprocess.run(
        ["bash", "-c", script, sys.executable, str(_long_schedule(tmp_path))],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.stdout.startswith("== ") and done.stdout.count("\n") == 1, done.stdout
    assert done.stderr == f"status {EXIT_PIPE}\n", done.stderr


def _until(check: Callable[[], bool], proc: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if proc.poll() is not None:
            pytest.fail(f"finished before it could be interrupted: {proc.communicate()}")
        if time.monotonic() > deadline:
            pytest.fail("never reached the moment to interrupt")
        time.sleep(0.001)


def _interrupt(proc: subprocess.Popen[str]) -> tuple[int, str]:
    """Ctrl-C as a terminal sends it: SIGINT to the whole process group."""
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    return proc.returncode, err


def _maps(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return ""


def test_ctrl_c_while_loading_gives_one_line() -> None:
    """Interrupted while the modules load (psycopg's library is being mapped)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "racesim.cli.main", "run", SCENARIO, "--store", "token"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    _until(lambda: "psycopg" in _maps(proc.pid), proc)
    status, err = _interrupt(proc)
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert (status, err) == (EXIT_INTERRUPTED, "racesim: interrupted\n")


def test_ctrl_c_while_the_server_starts_gives_one_line_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    args = ["run", SCENARIO, "--store", "token"]
    with started_racesim("ctrl-c", tmp_path, args, start_new_session=True) as (proc, runs):
        _until(lambda: any(runs.iterdir()), proc)
        status, err = _interrupt(proc)
        assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
        assert (status, err) == (EXIT_INTERRUPTED, "racesim: interrupted\n")
        deadline = time.monotonic() + 10
        while any(runs.iterdir()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert list(runs.iterdir()) == []
