"""``racesim clean``: remove racesim's cache and the run directories of dead racesims."""

from __future__ import annotations

import argparse

from racesim.errors import EXIT_OK
from racesim.formats.names import escaped
from racesim.provision import cache, cleanup
from racesim.provision.cluster import RUN_PREFIX, run_root
from racesim.report.text import Reporter

__all__ = ["cmd_clean"]


def cmd_clean(args: argparse.Namespace, reporter: Reporter) -> int:
    """Remove the cache (refusing a path that is not racesim's) and stale run dirs.

    A run directory whose racesim still runs is never touched.
    """
    root = cache.cache_root()
    removed, note = cache.clean(root)
    stale = cleanup.reap_stale(run_root(), RUN_PREFIX)
    for path, size in removed:
        reporter.line(f"removed {escaped(str(path))} ({size / 2**20:.1f} MiB)")
    for path in stale:
        reporter.line(f"removed stale run directory {escaped(str(path))}")
    if note:
        reporter.line(note)
    total = sum(size for _path, size in removed)
    reporter.line(
        f"racesim clean: {len(removed)} cache entries ({total / 2**20:.1f} MiB) from"
        f" {escaped(str(root))} and {len(stale)} stale run directories from"
        f" {escaped(str(run_root()))} removed"
    )
    return EXIT_OK
