"""``racesim soak``: explore for minutes on end and watch for decay.

Seeded PCT exploration of a system's PCT configuration (the reference system's:
six runs with faults and clock moves) on one pooled database, in windows of a
minute. After
each window it prints schedules per second, this process's resident memory
(now and peak), the server backends connected to the soak's database, and the
threads alive here. The last lines compare the first window with the last:
memory should stay flat, backends constant, throughput steady.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from racesim.engine.pool import SessionPool
from racesim.engine.prepare import preparer
from racesim.explore.search import pct
from racesim.provision.connecting import connect
from racesim.provision.databases import Databases
from racesim.provision.provide import provide
from racesim.report.text import Reporter
from racesim.system import System

MEMORY_GROWTH_LIMIT = 1.10
"""End-of-soak RSS may be at most this much of the first window's."""
THROUGHPUT_FLOOR = 0.90
"""The last window's schedules/s must be at least this much of the first window's."""


def _status(field: str) -> float:
    """A ``/proc/self/status`` figure in MiB (VmRSS: now, VmHWM: peak)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def _backends(conninfo: str) -> int:
    with connect(conninfo, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()
    return int(row[0]) if row else 0


def _default_store(system: System) -> str:
    """The first store on a database that follows the system's model, else the first."""
    for v in system.variants:
        if v.database and v.follows_model:
            return v.name
    return system.variants[0].name


def run(
    reporter: Reporter,
    system: System,
    *,
    minutes: float = 10.0,
    store: str | None = None,
    seed: int = 0,
    window: float = 60.0,
    pg: str = "auto",
    dsn: str | None = None,
) -> bool:
    """Soak ``system`` for ``minutes``; print a line per window and the verdict; True
    when steady."""
    store = store or _default_store(system)
    system.variant(store)  # an unknown store is refused before anything starts
    actors = system.config(None, "pct").roster()
    windows = max(1, round(minutes * 60 / window))
    rows: list[tuple[float, float, float, int, int]] = []
    with (
        provide(pg, dsn) as server,
        Databases(server, preparer(system), label="racesim_soak") as dbs,
    ):
        conninfo = server.conninfo(dbs.create())
        with SessionPool(conninfo, store, system) as pool:
            reporter.line(
                f"soak: {system.name} system, {store} store, {len(actors)} runs, "
                f"{windows} window(s) of {window:.0f}s, seed {seed}"
            )
            for w in range(windows):
                started = time.monotonic()
                result = pct(
                    actors,
                    store,
                    pool=pool,
                    seed=seed + w * 1_000_000,
                    deadline=started + window,
                    system=system,
                )
                rate = result.explored / (time.monotonic() - started)
                row = (
                    rate,
                    _status("VmRSS"),
                    _status("VmHWM"),
                    _backends(conninfo),
                    threading.active_count(),
                )
                rows.append(row)
                reporter.line(
                    f"  window {w + 1:>2}: {result.explored:>7} schedules ({rate:6.1f}/s), "
                    f"RSS {row[1]:6.1f} MiB (peak {row[2]:6.1f}), backends {row[3]}, "
                    f"threads {row[4]}"
                )
    first, last = rows[0], rows[-1]
    memory_ok = last[1] <= first[1] * MEMORY_GROWTH_LIMIT
    backends_ok = last[3] == first[3]
    speed = last[0] / first[0] if first[0] else 0.0
    speed_ok = speed >= THROUGHPUT_FLOOR
    reporter.line(
        f"memory: RSS {first[1]:.1f} MiB after the first window, {last[1]:.1f} MiB at the end, "
        f"peak {last[2]:.1f} MiB: " + ("flat" if memory_ok else "GREW")
    )
    reporter.line(
        f"backends: {first[3]} after the first window, {last[3]} at the end: "
        + ("no leak" if backends_ok else "LEAK")
    )
    reporter.line(
        f"throughput: {first[0]:.1f}/s in the first window, {last[0]:.1f}/s in the last "
        f"(ratio {speed:.2f}, floor {THROUGHPUT_FLOOR}): " + ("steady" if speed_ok else "DECAYED")
    )
    return memory_ok and backends_ok and speed_ok
