"""``racesim bench workers``: one exhaustive search spread over 2 worker processes
against the same search on 1 worker, measured alternately in the same run.

The search is the job queue's ``skiplocked`` store under ``2jobs``, its
interleavings alone (``--clock-moves 0``: 1,058 schedules, none violating). Both
runs go through ``--workers`` (execnet popen gateways), on one PostgreSQL server
provided once (each worker makes its own database), so the figure is the
search's own speed-up, not provisioning. The 1-worker run pays for the split
too, as one process would not: the figure counts that cost against spreading. The
figure is the median 1-worker time divided by the median 2-worker time (target
>= 1.6 on 2 cores; other load on the machine lowers it).

Example::

    for line in run("auto", None, repeat=1):
        print(line)
"""

from __future__ import annotations

import io
import statistics
import tempfile
import time
from pathlib import Path

from racesim.errors import EXIT_OK, HarnessError
from racesim.explore.distribute import spread
from racesim.explore.run import ExploreOptions
from racesim.provision.provide import provide
from racesim.report.text import Reporter

__all__ = ["TARGET", "run"]

TARGET = 1.6
SYSTEM, STORE, CONFIG = "jobqueue", "skiplocked", "2jobs"


def _once(dsn: str, workers: int) -> tuple[float, str]:
    with tempfile.TemporaryDirectory(prefix="racesim-bench-workers-") as out:
        opts = ExploreOptions(
            store=STORE,
            strategy="exhaustive",
            config=CONFIG,
            system=SYSTEM,
            out=Path(out),
            clock_moves=0,
        )
        text = io.StringIO()
        started = time.perf_counter()
        status = spread(
            opts,
            ["popen"] * workers,
            pg="dsn",
            dsn=dsn,
            reporter=Reporter(out=text, err=text),
            system=SYSTEM,
        )
        seconds = time.perf_counter() - started
    last = text.getvalue().strip().splitlines()[-1]
    if status != EXIT_OK:
        raise HarnessError(f"bench workers: the search on {workers} worker(s) failed: {last}")
    return seconds, last


def run(pg: str = "auto", dsn: str | None = None, *, repeat: int = 1) -> list[str]:
    """Measure and return report lines (the CLI prints them)."""
    one: list[float] = []
    two: list[float] = []
    with provide(pg, dsn) as server:
        for _ in range(max(1, repeat)):
            s1, line1 = _once(server.conninfo(), 1)
            s2, line2 = _once(server.conninfo(), 2)
            one.append(s1)
            two.append(s2)
    a, b = statistics.median(one), statistics.median(two)
    ratio = a / b
    return [
        f"exhaustive {SYSTEM}/{STORE} {CONFIG} over execnet popen workers, medians of {len(one)}:",
        f"  1 worker:  {a:.2f} s  ({line1})",
        f"  2 workers: {b:.2f} s  ({line2})",
        f"  speedup {ratio:.2f}x (target >= {TARGET}) " + ("ok" if ratio >= TARGET else "MISSED"),
    ]
