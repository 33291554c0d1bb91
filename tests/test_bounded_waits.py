"""Every wait of a spec run is bounded and interruptible: setup, teardown and
invariant queries get the step bound, and SIGTERM or Ctrl-C end racesim within 2 s
whatever it waits for, with its exit status and one line."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from commands import racesim, started_racesim
from spec_support import Target, target15, write_spec

__all__ = ["target15"]

SLEEPY_SETUP = """
setup { SELECT pg_sleep(1000); }
session s
step a { SELECT 1 AS one; }
"""

# s1's teardown waits on the lock s2's open transaction holds; s2's teardown, which
# would release it, runs only after s1's: isolationtester waits for ever.
STUCK_TEARDOWN = """
setup { CREATE TABLE u (i int); }
teardown { DROP TABLE u; }
session s1
step s1a { SELECT 1 AS one; }
teardown { SELECT count(*) AS n FROM u; }
session s2
step s2a { BEGIN; LOCK TABLE u IN ACCESS EXCLUSIVE MODE; }
teardown { ROLLBACK; }
permutation s1a s2a
"""

BOOKING = """
setup { CREATE TABLE seats (seat int, person text); }
teardown { DROP TABLE seats; }
session a
step a_book { INSERT INTO seats VALUES (1, 'a'); }
session b
step b_book { INSERT INTO seats VALUES (1, 'b'); }
"""
SLEEPY_INVARIANT = '[invariants]\nslow = "SELECT 1 FROM pg_sleep(1000)"\n'


def test_a_setup_past_the_step_bound_is_canceled(target15: Target, tmp_path: Path) -> None:
    _path, spec = write_spec(tmp_path, SLEEPY_SETUP)
    started = time.monotonic()
    completed, out = target15.racesim(spec, step_timeout=1)
    assert time.monotonic() - started < 10
    assert not completed  # a failed setup stops the spec, as in isolationtester
    assert b"racesim: canceling setup after 1 seconds (the step bound)\n" in out
    assert b"setup failed: ERROR:  canceling statement due to user request\n" in out


def test_a_teardown_behind_blocked_sessions_is_canceled(target15: Target, tmp_path: Path) -> None:
    _path, spec = write_spec(tmp_path, STUCK_TEARDOWN)
    started = time.monotonic()
    completed, out = target15.racesim(spec, step_timeout=1)
    assert time.monotonic() - started < 10
    assert completed
    assert b"racesim: canceling teardown of session s1 after 1 seconds (the step bound)\n" in out
    assert (
        b"teardown of session s1 failed: ERROR:  canceling statement due to user request\n" in out
    )
    # s2's teardown then ran, and with it the spec's own: the table is gone
    with psycopg.connect(target15.dbs.server.conninfo()) as conn:
        assert conn.execute(
            "SELECT count(*) FROM pg_locks WHERE mode = 'AccessExclusiveLock'"
            " AND relation IS NOT NULL AND NOT granted"
        ).fetchone() == (0,)


@pytest.mark.parametrize("strategy", ["exhaustive", "pct"])
def test_an_invariant_past_the_step_bound_is_one_line(
    target15: Target, tmp_path: Path, strategy: str
) -> None:
    spec, _ = write_spec(tmp_path, BOOKING, "booking.spec")
    (tmp_path / "booking.spec.toml").write_text(SLEEPY_INVARIANT)
    bound = ["--step-timeout", "1"] if strategy == "exhaustive" else []
    started = time.monotonic()
    done = racesim(
        "explore", str(spec), "--strategy", strategy, *bound,
        "--out", str(tmp_path / "out"), "--dsn", target15.dbs.server.conninfo(),
    )  # fmt: skip
    # exhaustive: --step-timeout 1; pct: the engine's step bound (10 s)
    assert time.monotonic() - started < (10 if strategy == "exhaustive" else 25)
    assert done.returncode == 2, done.stdout + done.stderr
    [line] = done.stderr.splitlines()
    assert "invariant 'slow'" in line and "step bound" in line and "fix:" in line, line


def _active(dsn: str, like: str, waiting_on_lock: bool = False) -> Callable[[], bool]:
    def found() -> bool:
        with psycopg.connect(dsn, autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE state = 'active'"
                " AND query LIKE %s AND pid <> pg_backend_pid()"
                " AND (NOT %s OR wait_event_type = 'Lock')",
                (like, waiting_on_lock),
            ).fetchone()
        return bool(row and row[0])

    return found


SIGNALS = {
    signal.SIGTERM: (143, "racesim: terminated"),
    signal.SIGINT: (130, "racesim: interrupted"),
}


@pytest.mark.parametrize("signum", list(SIGNALS), ids=lambda s: s.name)
@pytest.mark.parametrize("where", ["setup", "teardown", "invariant", "invariant-pct"])
def test_a_signal_stops_racesim_within_2_s(
    target15: Target, tmp_path: Path, where: str, signum: signal.Signals
) -> None:
    dsn = target15.dbs.server.conninfo()
    if where == "setup":
        spec, _ = write_spec(tmp_path, SLEEPY_SETUP)
        args, stuck = ["run", str(spec)], _active(dsn, "SELECT pg_sleep(1000)%")
    elif where == "teardown":
        spec, _ = write_spec(tmp_path, STUCK_TEARDOWN)
        args = ["run", str(spec)]
        stuck = _active(dsn, "SELECT count(*) AS n FROM u%", waiting_on_lock=True)
    else:
        spec, _ = write_spec(tmp_path, BOOKING, "booking.spec")
        (tmp_path / "booking.spec.toml").write_text(SLEEPY_INVARIANT)
        strategy = "pct" if where == "invariant-pct" else "exhaustive"
        args = ["explore", str(spec), "--strategy", strategy, "--out", str(tmp_path / "out")]
        stuck = _active(dsn, "%pg_sleep(1000)%")
    name = f"wait-{where}-{signum.name}"
    with started_racesim(name, tmp_path, [*args, "--dsn", dsn]) as (proc, _runs):
        deadline = time.monotonic() + 60
        while not stuck():
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, "never reached the wait"
            time.sleep(0.05)
        time.sleep(0.2)
        sent = time.monotonic()
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
        took = time.monotonic() - sent
    assert took < 2.0, f"{took:.1f}s"
    status, line = SIGNALS[signum]
    assert (proc.returncode, err) == (status, line + "\n")
