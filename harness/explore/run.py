"""``racesim explore``: search schedules for violations, shrink them, save them as scenarios.

Four strategies share one way of reporting:

``portfolio``   several seeded searches taking turns (:mod:`racesim.explore.portfolio`);
``hypothesis``  schedules as Hypothesis data (:mod:`racesim.explore.hypothesis_search`);
                failures are shrunk by Hypothesis to fewer runs, steps and context switches;
``exhaustive``  every distinct schedule of a small configuration (:mod:`racesim.explore.search`),
                or, for a spread search, its split or one subtree of it;
``pct``         seeded PCT sampling of a larger configuration (:mod:`racesim.explore.pct`).

Every strategy runs the configuration ``--config`` names (the system's named
configurations; without it, the strategy's default, or runs drawn from the
system's run kinds). Each distinct violation (by invariant and cause) is saved
under ``out`` as a scenario file (:mod:`racesim.explore.keeper`), *then* printed
as a timeline; the file's name and bytes depend only on the store, invariant,
cause, strategy and seed. The summary (:mod:`racesim.explore.summary`) never calls
an unfinished search a pass.

Example::

    with databases("auto", None, resolve("reference")) as dbs:
        result = explore(ExploreOptions(store="legacy", seed=1), dbs, Reporter())
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from racesim.engine.pool import SessionPool
from racesim.errors import InputError
from racesim.explore.drive import Driven, drive
from racesim.explore.hypothesis_search import hypothesis_search
from racesim.explore.keeper import Keeper, shrink_deadline
from racesim.explore.options import DEFAULT_OUT, Explored, ExploreOptions
from racesim.explore.profiles import profile_name
from racesim.explore.search import SearchResult, Subtree, clock_choices, exhaustive, pct, split
from racesim.explore.shrink import shrink
from racesim.explore.summary import report, ticker
from racesim.provision.databases import Databases
from racesim.report.text import Reporter
from racesim.system import DEFAULT_SYSTEM, Config, System, resolve

__all__ = [
    "DEFAULT_OUT",
    "STRATEGIES",
    "ExploreOptions",
    "Explored",
    "explore",
    "parse_budget",
    "parse_shard",
]

STRATEGIES = ("portfolio", "hypothesis", "exhaustive", "pct")
_BUDGET = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)?$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_budget(text: str) -> float:
    """``30s``, ``2m``, ``500ms`` or plain seconds -> seconds; InputError otherwise."""
    m = _BUDGET.match(text.strip())
    if not m or float(m.group(1)) <= 0:
        raise InputError(f"--budget: expected a duration like 30s, 2m or 500ms, got {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2) or "s"]


def parse_shard(text: str) -> tuple[int, int]:
    """``K/N`` with 1 <= K <= N -> (K, N); InputError otherwise."""
    m = re.match(r"^(\d+)/(\d+)$", text.strip())
    if not m or not 1 <= int(m.group(1)) <= int(m.group(2)):
        raise InputError(f"--shard: expected K/N with 1 <= K <= N (e.g. 2/4), got {text!r}")
    return int(m.group(1)), int(m.group(2))


def explore(
    opts: ExploreOptions,
    dbs: Databases | None,
    reporter: Reporter,
    *,
    pool: SessionPool | None = None,
) -> Explored:
    """Run the exploration ``opts`` describes; print and save what it finds. Given a
    ``pool`` (for ``opts.store``), it runs there (reset before each schedule) rather
    than on a fresh database of ``dbs``."""
    if opts.strategy not in STRATEGIES:
        raise InputError(
            f"--strategy: expected one of {', '.join(STRATEGIES)}, got {opts.strategy!r}"
        )
    system = resolve(DEFAULT_SYSTEM if opts.system is None else opts.system)
    database = system.variant(opts.store).database
    config = system.config(opts.config, _defaults_of(opts.strategy, system))
    profile_name(opts.profile)
    result = Explored()
    keeper = Keeper(opts, result, system)
    started = result.started
    own = pool is None
    name = dbs.create() if own and dbs is not None and database else None
    if own and dbs is not None and name is not None:
        pool = SessionPool(dbs.server.conninfo(name), opts.store, system)
        pool.open(len(config.roster()))
    try:
        if opts.strategy == "hypothesis":
            hypothesis_search(opts, config, pool, keeper, reporter)
        elif opts.strategy == "portfolio":
            _portfolio(opts, config, pool, keeper, reporter)
        else:
            _systematic(opts, config, pool, keeper, reporter)
        stop = shrink_deadline(opts, started)
        for key in sorted(keeper.seen):
            for driven in list(keeper.seen[key]):
                keeper.offer(
                    shrink(
                        driven,
                        lambda actors, choices: drive(
                            actors, choices, opts.store, pool=pool, seed=opts.seed, system=system
                        ),
                        system=system,
                        deadline=stop,
                        key=key,
                    ),
                    key,
                )
        result.seconds = time.monotonic() - started
        if opts.budget is not None and keeper.seen:
            result.over_budget = max(0.0, result.seconds - opts.budget)
        reporter.end_progress()
        report(opts, result, pool, reporter, system)
    finally:
        if pool is not None and own:
            pool.close()
        if dbs is not None and name is not None:
            dbs.drop(name)
    return result


def _defaults_of(strategy: str, system: System) -> str:
    """The strategy whose default configuration ``strategy`` runs: the portfolio's own
    when the system names one, else the hypothesis strategy's."""
    if strategy == "portfolio" and strategy not in system.defaults:
        return "hypothesis"
    return strategy


def _deadline(opts: ExploreOptions) -> float | None:
    """When a search's budget (--budget) runs out, or None for no budget."""
    return time.monotonic() + opts.budget if opts.budget else None


def _progress(
    opts: ExploreOptions, reporter: Reporter, *, skipped: bool
) -> Callable[[SearchResult], None]:
    """A search's progress line: schedules explored (and ``skipped``) and violations."""
    tick = ticker(reporter)

    def progress(r: SearchResult) -> None:
        gaps = f"{r.skipped} skipped, " if skipped else ""
        tick(
            f"explore {opts.store} ({opts.strategy}): {r.explored} schedules, "
            f"{gaps}{len(r.found)} violation(s)"
        )

    return progress


def _portfolio(
    opts: ExploreOptions,
    config: Config,
    pool: SessionPool | None,
    keeper: Keeper,
    reporter: Reporter,
) -> None:
    from racesim.explore.portfolio import DEFAULT_SCHEDULES, portfolio

    result = keeper.result
    deadline = _deadline(opts)
    progress = _progress(opts, reporter, skipped=False)

    def offer(driven: Driven) -> None:
        # Saved at once, before the search goes on: a kill loses no finding.
        keeper.offer(driven)

    count = opts.max_examples or (None if deadline else DEFAULT_SCHEDULES)
    r = portfolio(
        config,
        opts.store,
        pool=pool,
        seed=opts.seed,
        schedules=count,
        deadline=deadline,
        progress=progress,
        system=keeper.system,
        offer=offer,
    )
    result.schedules, result.detail = r.explored, r.describe()
    keeper.offer_all(r.found)


def _systematic(
    opts: ExploreOptions,
    config: Config,
    pool: SessionPool | None,
    keeper: Keeper,
    reporter: Reporter,
) -> None:
    result = keeper.result
    deadline = _deadline(opts)
    progress = _progress(opts, reporter, skipped=True)

    actors = config.roster()
    if opts.strategy == "exhaustive":
        c = clock_choices(keeper.system, config, opts.clock_moves)
        if opts.split:
            r, cuts = split(
                actors,
                opts.store,
                opts.split,
                pool=pool,
                seed=opts.seed,
                deadline=deadline,
                system=keeper.system,
                moves=c.moves,
                most_moves=c.most,
                faults=c.faults,
                at_openings=c.at_openings,
            )
            result.subtrees = [cut.plain() for cut in cuts]
        else:
            r = exhaustive(
                actors,
                opts.store,
                pool=pool,
                seed=opts.seed,
                shard=opts.shard,
                deadline=deadline,
                progress=progress,
                system=keeper.system,
                schedules=opts.max_examples,
                moves=c.moves,
                most_moves=c.most,
                faults=c.faults,
                at_openings=c.at_openings,
                subtree=None if opts.subtree is None else Subtree.from_plain(opts.subtree),
            )
        offered = bool(c.moves or c.faults)
    else:
        count = opts.max_examples or (None if deadline else 200)
        r = pct(
            actors,
            opts.store,
            pool=pool,
            seed=opts.seed,
            schedules=count,
            deadline=deadline,
            progress=progress,
            clock=config.clock,
            system=keeper.system,
            faults=config.faults,
        )
        offered = bool(config.faults)
    result.schedules, result.skipped, result.complete = r.explored, r.skipped, r.complete
    if r.moved or r.faulted or offered:
        result.detail = f"{opts.strategy}: {r.extras()}"
    keeper.offer_all(r.found)
