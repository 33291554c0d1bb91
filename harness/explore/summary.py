"""What ``racesim explore`` prints: a progress line while it searches, then each
saved counterexample as a timeline (replayed once: one that does not break again
is reported as flaky, never counted) and the summary, which never calls an
unfinished search a pass.

Example::

    report(opts, result, pool, reporter, system)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from racesim.engine.loop import Options, execute
from racesim.engine.pool import SessionPool
from racesim.errors import InputError
from racesim.explore.keeper import SHRINK_ALLOWANCE
from racesim.formats.names import escaped
from racesim.model.verdict import Expectation, judge
from racesim.report import html
from racesim.report.text import Reporter
from racesim.system import System

if TYPE_CHECKING:
    from racesim.explore.options import Explored, ExploreOptions

__all__ = ["report", "ticker"]


def ticker(reporter: Reporter) -> Callable[[str], None]:
    """Print progress at most every 0.2 s on a terminal, every 5 s elsewhere."""
    every = 0.2 if reporter.out.isatty() else 5.0
    last = [0.0]

    def tick(text: str) -> None:
        now = time.monotonic()
        if now - last[0] >= every:
            last[0] = now
            reporter.progress(text)

    return tick


def report(
    opts: ExploreOptions,
    result: Explored,
    pool: SessionPool | None,
    reporter: Reporter,
    system: System,
) -> None:
    """Print each saved counterexample as a timeline (replayed once), then the summary."""
    for key in sorted(result.found):
        driven = result.found[key]
        v = driven.violation(key)
        expected = Expectation(v.invariant, v.label)
        path = str(result.files[key])
        try:
            replay = execute(
                driven.plan,
                opts.store,
                None,
                Options(stop_at_first=True),
                path,
                pool=pool,
                system=system,
            )
        except InputError as exc:  # the programs took another path than the search saw
            again = f"the schedule no longer fits the programs ({exc.problems[0]})"
        else:
            verdict = judge(replay, expected)
            view = reporter.run(
                f"{key} (seed {opts.seed}, {driven.steps} steps)", path, replay, verdict
            )
            if opts.html:
                page = html.write([view], result.files[key].with_suffix(".html"))
                reporter.line(f"   page: {escaped(str(page))}")
            if verdict.matches:
                continue
            again = verdict.summary
        result.flaky[key] = (
            f"flaky: {v.invariant} broke at {v.label} ({v.message}) during the search, but"
            f" replaying the saved schedule gave: {again}; not counted (kept in {path})"
        )
        reporter.line(result.flaky[key])
    for key in result.flaky:
        del result.found[key]
    rate = result.schedules / result.seconds if result.seconds > 0 else 0.0
    stats = f"{result.seconds:.2f}s, {rate:.0f} schedules/s"
    flaky = (
        f"; {len(result.flaky)} flaky, not counted ({', '.join(sorted(result.flaky))})"
        if result.flaky
        else ""
    )
    if result.over_budget is not None:
        assert opts.budget is not None
        stats += (
            f"; shrinking took {result.over_budget:.2f}s beyond the {opts.budget:g}s budget"
            f" (at most {opts.budget * SHRINK_ALLOWANCE:.2f}s)"
        )
    if result.found:
        names = ", ".join(sorted(result.found))
        result.summary = (
            f"found {len(result.found)} violation(s) ({names}) after "
            f"{result.schedules} schedules (seed {opts.seed}, {stats}); saved: "
            + ", ".join(escaped(str(result.files[k])) for k in sorted(result.found))
            + flaky
        )
    elif result.flaky:
        result.summary = (
            f"no violation reproduced after {result.schedules} schedules{flaky}"
            f" ({opts.store}, {opts.strategy}, seed {opts.seed}, {stats})"
        )
    elif result.complete and opts.split:
        depth = len(result.subtrees[0]["frames"]) if result.subtrees else 0
        result.summary = (
            f"split into {len(result.subtrees)} subtrees at depth {depth}; the"
            f" {result.schedules} schedules that end above them explored, none violates"
            f" ({opts.store}, {stats})"
        )
    elif result.complete:
        part = f"shard {opts.shard[0]}/{opts.shard[1]}: " if opts.shard[1] > 1 else ""
        skipped = f", {result.skipped} redundant branches skipped" if result.skipped else ""
        result.summary = (
            f"{part}exhaustive: all {result.schedules} distinct schedules explored, "
            f"none violates ({opts.store}{skipped}, {stats})"
        )
    else:
        result.summary = (
            f"budget spent after {result.schedules} schedules: none found, "
            f"search incomplete ({opts.store}, {opts.strategy}, seed {opts.seed}, "
            f"{stats})"
        )
    if result.detail:
        result.summary += f"; {result.detail}"
    reporter.line(result.summary)
