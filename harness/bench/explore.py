"""``racesim bench explore``: how fast exploration finds races, against baselines run alongside.

Figures (medians over ``seeds`` seeds, from a warm cluster):

* time to the first T+0..T+4-style foreign clear on ``legacy`` and the shrunk step
  count, vs plain Hypothesis over the two bare statements on psycopg; the same for
  the job queue's naive double claim (a plain Hypothesis test over the bare
  ``SELECT ... LIMIT 1`` / ``UPDATE ... WHERE id``); racesim's time to find over
  the plain test's (target <= 2x), and where racesim's time to find goes (fresh
  database, sessions, reset, steps, monitor queries, clock writes; shrinking after);
* examples per second of a 20-step race machine vs a bare Hypothesis machine
  doing one UPDATE per step;
* exhaustive cron+user: schedules, time, and what the sleep-set reduction saved;
* per deeper configuration: schedules per second and time to the first violation
  (or to exhaustion).

Example::

    for line in run("auto", None, seeds=5):
        print(line)
"""

from __future__ import annotations

import io
import statistics
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from racesim.bench.breakdown import Breakdown, median_lines
from racesim.bench.plain import BareMachine, bare_double_claim, bare_foreign_clear, rate
from racesim.engine.pool import SessionPool
from racesim.engine.sessions import open_session
from racesim.explore.machines import race_machine
from racesim.explore.run import ExploreOptions, explore
from racesim.explore.search import exhaustive, pct
from racesim.model.plan import Actor
from racesim.provision.databases import Databases
from racesim.report.text import Reporter
from racesim.runner import Prepared, databases
from racesim.system import DEFAULT_SYSTEM, System, resolve

__all__ = ["run"]


def _ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:.0f} ms"


def run(pg: str = "auto", dsn: str | None = None, *, seeds: int = 5) -> list[str]:
    """Measure and return report lines (the CLI prints them)."""
    seeds = max(1, seeds)
    lines = [f"racesim explore benchmark: medians over {seeds} seed(s), warm cluster"]
    with databases(pg, dsn, _reference()) as dbs:
        lines += _legacy_race(dbs, seeds)
        lines += _double_claim(dbs, seeds)
        lines += _default_vs_hypothesis(dbs, seeds)
        lines += _machines(dbs)
        lines += _exhaustive(dbs)
        lines += _deep(dbs, seeds)
    return lines


SHALLOW_TARGET = 2.0
"""racesim's time to find a shallow race over a plain Hypothesis test's, at most."""


@dataclass
class _Timed:
    """Seeds of one exploration: time to find, whole run, shrunk steps, breakdowns."""

    found: list[float] = field(default_factory=list)
    total: list[float] = field(default_factory=list)
    steps: list[int] = field(default_factory=list)
    parts: list[dict[str, float]] = field(default_factory=list)
    shrinking: list[float] = field(default_factory=list)


def _timed_explore(opts: ExploreOptions, dbs: Databases, seeds: int) -> _Timed:
    timed = _Timed()
    with tempfile.TemporaryDirectory() as out:
        # Unmeasured: what the first search of a process pays once (as for the baselines).
        explore(replace(opts, max_examples=1, out=Path(out)), dbs, Reporter(io.StringIO()))
        for seed in range(seeds):
            seeded = replace(opts, seed=seed, out=Path(out))
            start = time.perf_counter()
            with Breakdown() as timing:
                result = explore(seeded, dbs, Reporter(io.StringIO()))
            timed.total.append(time.perf_counter() - start)
            timed.shrinking.append(timing.total("shrinking"))
            if result.first_found is not None:
                timed.found.append(result.first_found)
                timed.parts.append(timing.before(result.first_found))
            timed.steps += [d.steps for d in result.found.values()]
    return timed


def _versus(
    name: str, ours: _Timed, base_found: list[float], base_setup: list[float], seeds: int
) -> list[str]:
    """racesim's time to find against the plain test's, with the breakdown."""
    ratio = (
        statistics.median(ours.found) / statistics.median(base_found)
        if ours.found and base_found
        else float("inf")
    )
    met = len(ours.found) == seeds and ratio <= SHALLOW_TARGET
    return [
        f"  {name}: racesim / plain Hypothesis time to find: {ratio:.1f}x"
        f"  [target <= {SHALLOW_TARGET:.0f}x: {'met' if met else 'NOT met'}]",
        *_search_alone(ours, base_found, base_setup),
        *median_lines(ours.found, ours.parts, "racesim's time to find, by part"),
        f"    after the finding: shrinking {_ms(ours.shrinking)}, the whole run {_ms(ours.total)}",
    ]


def _search_alone(ours: _Timed, base_found: list[float], base_setup: list[float]) -> list[str]:
    """The same ratio without either side's fresh database and sessions."""
    if not ours.found or not base_found:
        return []
    setup = ("fresh database", "opening sessions")
    ours_alone = statistics.median(
        f - sum(p[w] for w in setup) for f, p in zip(ours.found, ours.parts, strict=True)
    )
    base_alone = statistics.median(f - s for f, s in zip(base_found, base_setup, strict=True))
    return [
        f"    the searches alone, without their fresh database and sessions: racesim"
        f" {ours_alone * 1000:.0f} ms, plain Hypothesis {base_alone * 1000:.0f} ms:"
        f" {ours_alone / base_alone:.1f}x"
    ]


def _legacy_race(dbs: Databases, seeds: int) -> list[str]:
    opts = ExploreOptions(store="legacy", max_examples=1000, example_db=False)
    ours = _timed_explore(opts, dbs, seeds)
    found, total, steps = ours.found, ours.total, ours.steps
    base_found, base_steps, base_setup = bare_foreign_clear(dbs, seeds)
    ok = len(found) == seeds and max(steps, default=99) <= 5
    return [
        f"legacy foreign clear, racesim explore: found in {_ms(found) if found else 'never'}"
        f" ({len(found)}/{seeds} seeds), with shrinking {_ms(total)}, shrunk to"
        f" {max(steps, default=0)} steps at most  [target <= 250 ms, <= 5 steps: "
        f"{'met' if ok and statistics.median(found) <= 0.25 else 'NOT met'}]",
        f"  baseline, plain Hypothesis over the bare statements on psycopg: found in"
        f" {_ms(base_found)}, shrunk to {statistics.median(base_steps):.0f} calls"
        f" (racesim takes {_ratio(found, base_found)} the baseline's time to find it)",
        *_versus("legacy foreign clear", ours, base_found, base_setup, seeds),
    ]


def _double_claim(dbs: Databases, seeds: int) -> list[str]:
    """The job queue's naive double claim: racesim explore against a plain Hypothesis
    test over the bare statements, on databases of the job queue's schema."""
    queue = resolve("jobqueue")
    made = Prepared(dbs.server)
    try:
        qdbs = made.for_system(queue)
        opts = ExploreOptions(store="naive", system="jobqueue", max_examples=300, example_db=False)
        ours = _timed_explore(opts, qdbs, seeds)
        base_found, base_calls, base_setup = bare_double_claim(qdbs, seeds)
    finally:
        made.close()
    return [
        f"job queue naive double claim, racesim explore --system jobqueue --store naive: found"
        f" in {_ms(ours.found) if ours.found else 'never'} ({len(ours.found)}/{seeds} seeds),"
        f" shrunk to {max(ours.steps, default=0)} steps at most",
        f"  baseline, plain Hypothesis over the bare SELECT ... LIMIT 1 / UPDATE on psycopg:"
        f" found in {_ms(base_found) if base_found else 'never'} ({len(base_found)}/{seeds}"
        f" seeds), shrunk to {statistics.median(base_calls) if base_calls else 0:.0f} calls",
        *_versus("job queue double claim", ours, base_found, base_setup, seeds),
    ]


DUPLICATE_CLEAR = "no-foreign-clear/cleared-by-clear"


def _time_to_find(dbs: Databases, seed: int, out: Path, strategy: str | None) -> tuple[float, bool]:
    """``racesim explore --store token --seed SEED`` (with ``--strategy``, when given):
    seconds to the foreign clear (no-foreign-clear/cleared-by-clear), or the whole run's seconds and False when
    the search ended without it."""
    opts = ExploreOptions(store="token", seed=seed, out=out, example_db=False)
    if strategy is not None:
        opts = replace(opts, strategy=strategy)
    start = time.perf_counter()
    result = explore(opts, dbs, Reporter(io.StringIO()))
    total = time.perf_counter() - start
    if DUPLICATE_CLEAR in result.found and result.first_found is not None:
        return result.first_found, True
    return total, False


def _default_vs_hypothesis(dbs: Databases, seeds: int) -> list[str]:
    """Time to the token store's foreign clear of a second invoke: the default command (the
    portfolio) against the former default (Hypothesis alone, 200 examples), seeds 1..N."""
    ours: list[float] = []
    base: list[float] = []
    ours_found = base_found = 0
    with tempfile.TemporaryDirectory() as out:
        for seed in range(1, seeds + 1):
            t, ok = _time_to_find(dbs, seed, Path(out), None)
            ours.append(t)
            ours_found += ok
            t, ok = _time_to_find(dbs, seed, Path(out), "hypothesis")
            base.append(t)
            base_found += ok
    ours_median, base_median = statistics.median(ours), statistics.median(base)
    bound = "" if base_found == seeds else "at most "
    met = ours_found == seeds and ours_median <= 1.0
    return [
        f"token foreign clear, racesim explore --store token (portfolio): found"
        f" on {ours_found}/{seeds} seeds, median {_ms(ours)} to find"
        f" [target 5/5 seeds, <= 1 s: {'met' if met else 'NOT met'}]",
        f"  baseline, --strategy hypothesis (the former default, 200 examples): found on"
        f" {base_found}/{seeds} seeds, median {_ms(base)}"
        + (" (a seed that never finds it counts its whole run: a lower bound)" if bound else "")
        + f"; ratio {bound}{ours_median / base_median:.2f} (portfolio / hypothesis)",
    ]


def _ratio(ours: list[float], base: list[float]) -> str:
    if not ours or not base or statistics.median(base) == 0:
        return "n/a x"
    return f"{statistics.median(ours) / statistics.median(base):.1f}x"


def _machines(dbs: Databases) -> list[str]:
    name = dbs.create()
    try:
        with SessionPool(dbs.server.conninfo(name), "token", _reference()) as pool:
            ours = rate(race_machine("token", pool, system=_reference()), 200)
        with open_session(dbs.server.conninfo(name)) as conn:
            BareMachine.conn = conn
            bare = rate(BareMachine, 200)
    finally:
        dbs.drop(name)
    verdict = "met" if ours >= 100 else "NOT met"
    return [
        f"20-step race machine on token: {ours:.0f} examples/s vs bare Hypothesis machine"
        f" (one UPDATE per step) {bare:.0f} examples/s, ratio {ours / bare:.2f}"
        f"  [target >= 100: {verdict}]"
    ]


def _exhaustive(dbs: Databases) -> list[str]:
    name = dbs.create()
    try:
        reference = _reference()
        with SessionPool(dbs.server.conninfo(name), "token", reference) as pool:
            cron_user = _configs()["cron+user"]
            reduced = exhaustive(cron_user, "token", pool=pool, system=reference)
            full = exhaustive(cron_user, "token", pool=pool, reduce=False, system=reference)
    finally:
        dbs.drop(name)
    saved = 1 - reduced.explored / full.explored
    verdict = "met" if reduced.seconds <= 5 else "NOT met"
    return [
        f"exhaustive cron+user on token: {reduced.explored} schedules in"
        f" {reduced.seconds * 1000:.0f} ms ({reduced.skipped} branches skipped); without"
        f" reduction {full.explored} schedules in {full.seconds * 1000:.0f} ms: reduction"
        f" saved {saved:.0%}  [target <= 5 s: {verdict}]"
    ]


def _deep(dbs: Databases, seeds: int) -> list[str]:
    lines = []
    for store in ("legacy", "token"):
        name = dbs.create()
        try:
            with SessionPool(dbs.server.conninfo(name), store, _reference()) as pool:
                ex = exhaustive(_configs()["user-async+2bg"], store, pool=pool, system=_reference())
                lines.append(
                    f"user-async+2bg on {store} (exhaustive): {ex.explored / ex.seconds:.0f}"
                    f" schedules/s, {ex.explored} schedules in {ex.seconds * 1000:.0f} ms, "
                    + (f"found {', '.join(sorted(ex.found))}" if ex.found else "none violates")
                )
                firsts, rates = [], []
                for seed in range(seeds):
                    start = time.perf_counter()
                    first: list[float] = []

                    def progress(r: Any, first: list[float] = first, start: float = start) -> None:
                        if r.found and not first:
                            first.append(time.perf_counter() - start)

                    r = pct(
                        _configs()["mixed"],
                        store,
                        pool=pool,
                        seed=seed,
                        schedules=100,
                        progress=progress,
                        system=_reference(),
                    )
                    rates.append(r.explored / r.seconds)
                    firsts += first
                lines.append(
                    f"mixed (6 runs, faults, clock moves) on {store} (pct, 100 schedules):"
                    f" {statistics.median(rates):.0f} schedules/s, first violation in "
                    + (f"{_ms(firsts)} ({len(firsts)}/{seeds} seeds)" if firsts else "none found")
                )
        finally:
            dbs.drop(name)
    return lines


def _reference() -> System:
    """The reference system, whose scenarios and bare-SQL baselines these figures use."""
    return resolve(DEFAULT_SYSTEM)


def _configs() -> dict[str, tuple[Actor, ...]]:
    return {name: c.roster() for name, c in _reference().configs.items()}
