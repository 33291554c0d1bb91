"""``racesim bench parallel``: the exploration tests under ``pytest -n 2`` against ``-n 0``.

Both run in the same session, alternating, ``repeat`` times each; the figure is the
median serial time divided by the median parallel time (target >= 1.6). Needs a
checkout (the tests are not installed with the package).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

from racesim.errors import InputError

ROOT = Path(__file__).resolve().parents[2]
TESTS = ("test_explore.py", "test_search.py", "test_replay.py", "test_machines.py")
TARGET = 1.6


def _once(workers: int) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-n",
            str(workers),
            *(str(ROOT / "tests" / t) for t in TESTS),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise InputError(f"bench parallel: the exploration tests failed:\n{done.stdout[-2000:]}")
    return time.perf_counter() - started


def run(repeat: int = 3) -> list[str]:
    if not (ROOT / "tests").is_dir():
        raise InputError("bench parallel: needs a racesim checkout (tests/ is missing)")
    serial, parallel = [], []
    for _ in range(repeat):
        serial.append(_once(0))
        parallel.append(_once(2))
    s, p = statistics.median(serial), statistics.median(parallel)
    return [
        f"exploration tests ({', '.join(TESTS)}), medians of {repeat}:",
        f"  pytest -n 0: {s:.2f} s",
        f"  pytest -n 2: {p:.2f} s",
        f"  speedup {s / p:.2f}x (target >= {TARGET}) " + ("ok" if s / p >= TARGET else "MISSED"),
    ]
