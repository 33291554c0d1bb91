"""``racesim explore``: search schedules for violations, shrink them, save them as scenarios.

Three strategies share one way of reporting:

``hypothesis``  schedules as Hypothesis data (:mod:`racesim.explore.strategies`); failures
                are shrunk by Hypothesis to fewer runs, steps and context switches;
``exhaustive``  every distinct schedule of a small configuration (:mod:`racesim.explore.search`);
``pct``         seeded PCT sampling of a larger configuration.

Every strategy runs the configuration ``--config`` names (the system's named
configurations; without it, the strategy's default, or runs drawn from the
system's run kinds). Each distinct violation (by invariant and cause) is saved
under ``out`` as a scenario file, *then* printed as a timeline; the file's name
and bytes depend only on the store, invariant, cause, strategy and seed. The summary never calls an
unfinished search a pass.

Example::

    with databases("auto", None, resolve("reference")) as dbs:
        result = explore(ExploreOptions(store="legacy", seed=1), dbs, Reporter())
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import hypothesis
from hypothesis import given

from racesim.engine.loop import Options, execute
from racesim.engine.pool import SessionPool
from racesim.errors import HarnessError, InputError
from racesim.explore.drive import Driven, clock_moves, drive
from racesim.explore.profiles import CACHE, profile_name, settings_for
from racesim.explore.search import SearchResult, exhaustive, pct
from racesim.explore.shrink import shrink, size
from racesim.explore.strategies import Schedule, schedules
from racesim.formats.names import escaped, file_part
from racesim.formats.writer import save, scenario_text
from racesim.model.verdict import Expectation, judge
from racesim.model.violation import Violation
from racesim.provision.databases import Databases
from racesim.report import html
from racesim.report.text import Reporter
from racesim.system import DEFAULT_SYSTEM, Config, System, resolve, spec_of

__all__ = ["STRATEGIES", "ExploreOptions", "Explored", "explore", "parse_budget", "parse_shard"]

STRATEGIES = ("portfolio", "hypothesis", "exhaustive", "pct")
DEFAULT_OUT = CACHE / "counterexamples"
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


@dataclass(frozen=True)
class ExploreOptions:
    """Everything ``racesim explore`` takes; defaults are the command's defaults."""

    store: str
    seed: int = 0
    budget: float | None = None
    max_examples: int | None = None
    strategy: str = "portfolio"
    out: Path = DEFAULT_OUT
    profile: str | None = None
    shard: tuple[int, int] = (1, 1)
    config: str | None = None
    example_db: bool | str = True
    """Keep Hypothesis's example database under the cache folder (``hypothesis`` only),
    or share one through Redis when a ``redis://HOST:PORT/N`` URL
    (:mod:`racesim.explore.shared`)."""
    system: System | str | None = None
    """The system explored, or its name (the reference system when None)."""
    html: bool = False
    """Write each counterexample's run as an HTML page next to its scenario file."""
    clock_moves: int = 0
    """(``exhaustive``) Try up to this many clock moves per schedule, and each fault a
    run may have added; 0 (the default) searches the interleavings alone."""


@dataclass
class Explored:
    """What an exploration found: one saved counterexample per invariant."""

    schedules: int = 0
    complete: bool = False
    skipped: int = 0
    seconds: float = 0.0
    found: dict[str, Driven] = field(default_factory=dict)
    """The smallest counterexample per ``invariant/cause`` key (``Violation.key``)."""
    files: dict[str, Path] = field(default_factory=dict)
    summary: str = ""
    flaky: dict[str, str] = field(default_factory=dict)
    """Invariants seen broken whose saved schedule did not break them again when
    replayed: both outcomes, as one line each. Never counted in ``found``."""
    over_budget: float | None = None
    """With a budget and something found: seconds shrinking went on past the budget."""
    first_found: float | None = None
    """Seconds from the start to the first violation seen (before any shrinking)."""
    started: float = field(default_factory=time.monotonic)
    detail: str = ""
    """What the summary adds: each portfolio member's work, or how many schedules of
    exhaustive and PCT made a clock move or had a fault added."""


SHRINK_ALLOWANCE = 0.25
"""With ``--budget``, shrinking what was found may go on for at most this share of
the budget beyond it (the best counterexample so far is kept when it stops)."""


def shrink_deadline(opts: ExploreOptions, started: float) -> float | None:
    """When shrinking must stop (a ``time.monotonic()`` value); None without a budget."""
    if opts.budget is None:
        return None
    return started + opts.budget * (1 + SHRINK_ALLOWANCE)


class _BudgetSpent(BaseException):
    """Ends a Hypothesis run from inside the test (not an Exception: never shrunk)."""


class _Lost(BaseException):
    """The harness lost PostgreSQL: ends the Hypothesis run at once (never shrunk,
    never reported as an example), to be raised again as the HarnessError it holds."""

    def __init__(self, error: HarnessError) -> None:
        super().__init__(str(error))
        self.error = error


class ViolationFound(AssertionError):
    """A schedule broke an invariant; one subclass per invariant and cause, so that
    Hypothesis shrinks and reports each as a distinct bug."""


_ERRORS: dict[str, type[ViolationFound]] = {}


def _error(key: str) -> type[ViolationFound]:
    """The exception class for violations with this key (made once per key)."""
    if key not in _ERRORS:
        name = "".join(c if c.isalnum() else "_" for c in key)
        _ERRORS[key] = type(f"Violation_{name}", (ViolationFound,), {})
    return _ERRORS[key]


class _Keeper:
    """Keeps the smallest counterexample per invariant and saves it at once."""

    def __init__(self, opts: ExploreOptions, result: Explored, system: System) -> None:
        self.opts = opts
        self.result = result
        self.system = system
        self.seen: dict[str, list[Driven]] = {}
        """The few smallest distinct counterexamples per invariant, to shrink further."""

    def offer_all(self, found: Mapping[str, Driven]) -> None:
        """Keep each of a search's findings, in the order of their keys."""
        for key in sorted(found):
            self.offer(found[key])

    def offer(self, driven: Driven, key: str | None = None) -> None:
        """Keep ``driven`` for each distinct violation of its first violating step
        (only for ``key``, when given)."""
        if not driven.violations:
            return
        if self.result.first_found is None:
            self.result.first_found = time.monotonic() - self.result.started
        for v in driven.first:
            if key is None or v.key == key:
                self._offer(driven, v)

    def _offer(self, driven: Driven, v: Violation) -> None:
        seen = self.seen.setdefault(v.key, [])
        if all(size(d) != size(driven) for d in seen):
            seen.append(driven)
            seen.sort(key=size)
            del seen[3:]
        best = self.result.found.get(v.key)
        if best is not None and size(best) <= size(driven):
            return
        self.result.found[v.key] = driven
        self.result.files[v.key] = save(self.text(driven, v), self.path(v.slug))

    def path(self, slug: str) -> Path:
        o = self.opts
        shard = f"-shard{o.shard[0]}of{o.shard[1]}" if o.shard[1] > 1 else ""
        config = f"-{file_part(o.config)}" if o.config else ""
        name = f"{file_part(o.store)}-{file_part(slug)}-{o.strategy}{config}-seed{o.seed}{shard}"
        return o.out / f"{name}.toml"

    def text(self, driven: Driven, v: Violation) -> str:
        o = self.opts
        plan, record = driven.plan, self.system.saved_actors
        if record is not None:
            plan = replace(plan, actors=record(plan.actors, tuple(driven.outcome.history.events)))
        return scenario_text(
            plan,
            o.store,
            v.invariant,
            v.label,
            name=f"{v.invariant} on {o.store}: {v.message}",
            description=f"Found by racesim explore --store {o.store} --strategy {o.strategy}"
            + (f" --config {o.config}" if o.config else "")
            + f" --seed {o.seed}; shrunk to {driven.steps} steps.",
            system=spec_of(self.system),
        )


def explore(opts: ExploreOptions, dbs: Databases | None, reporter: Reporter) -> Explored:
    """Run the exploration ``opts`` describes; print and save what it finds."""
    if opts.strategy not in STRATEGIES:
        raise InputError(
            f"--strategy: expected one of {', '.join(STRATEGIES)}, got {opts.strategy!r}"
        )
    system = resolve(DEFAULT_SYSTEM if opts.system is None else opts.system)
    database = system.variant(opts.store).database
    config = system.config(opts.config, _defaults_of(opts.strategy, system))
    profile_name(opts.profile)
    result = Explored()
    keeper = _Keeper(opts, result, system)
    started = result.started
    name = dbs.create() if dbs is not None and database else None
    pool = SessionPool(dbs.server.conninfo(name), opts.store, system) if dbs and name else None
    try:
        if opts.strategy == "hypothesis":
            _hypothesis(opts, config, pool, keeper, reporter)
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
        _report(opts, result, pool, reporter, system)
    finally:
        if pool is not None:
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


def _ticker(reporter: Reporter) -> Callable[[str], None]:
    """Print progress at most every 0.2 s on a terminal, every 5 s elsewhere."""
    every = 0.2 if reporter.out.isatty() else 5.0
    last = [0.0]

    def tick(text: str) -> None:
        now = time.monotonic()
        if now - last[0] >= every:
            last[0] = now
            reporter.progress(text)

    return tick


def _deadline(opts: ExploreOptions) -> float | None:
    """When a search's budget (--budget) runs out, or None for no budget."""
    return time.monotonic() + opts.budget if opts.budget else None


def _progress(
    opts: ExploreOptions, reporter: Reporter, *, skipped: bool
) -> Callable[[SearchResult], None]:
    """A search's progress line: schedules explored (and ``skipped``) and violations."""
    tick = _ticker(reporter)

    def progress(r: SearchResult) -> None:
        gaps = f"{r.skipped} skipped, " if skipped else ""
        tick(
            f"explore {opts.store} ({opts.strategy}): {r.explored} schedules, "
            f"{gaps}{len(r.found)} violation(s)"
        )

    return progress


def _hypothesis(
    opts: ExploreOptions,
    config: Config,
    pool: SessionPool | None,
    keeper: _Keeper,
    reporter: Reporter,
) -> None:
    system = keeper.system
    result = keeper.result
    tick = _ticker(reporter)
    start = result.started
    budget = opts.budget
    limit = opts.max_examples or (10**9 if budget else None)
    # One failure per run: with several, Hypothesis searches on for a fixed ten
    # seconds of wall time after the first, so what it finds would depend on speed.
    overrides: dict[str, object] = {"report_multiple_bugs": False, "derandomize": False}
    if limit is not None:
        overrides["max_examples"] = limit
    # The example database is the seed's own: what other seeds saved never changes
    # what this one finds (same seed, same result).
    key = f"{spec_of(system) or system.name}\0{opts.config or ''}\0seed {opts.seed}"
    store = opts.store if opts.example_db else ""
    settings = settings_for(opts.profile, store=store, key=key, **overrides)
    if isinstance(opts.example_db, str):
        from racesim.explore.shared import shared_database

        shared = f"{spec_of(system) or system.name}\0{opts.store}\0{opts.config or ''}"
        settings = hypothesis.settings(settings, database=shared_database(opts.example_db, shared))
    if limit is None:
        limit = settings.max_examples

    @settings
    @hypothesis.seed(opts.seed)
    @given(schedules(system, config))
    def example(s: Schedule) -> None:
        spent = time.monotonic() - start
        # Stop generating when the budget is spent; once something is found,
        # shrinking may go on for the allowance beyond it.
        if budget is not None and spent > budget * (1 + SHRINK_ALLOWANCE if result.found else 1):
            raise _BudgetSpent
        try:
            driven = drive(
                s.actors,
                list(s.choices),
                opts.store,
                pool=pool,
                seed=opts.seed,
                drain=True,
                system=system,
            )
        except HarnessError as exc:
            raise _Lost(exc) from None
        result.schedules += 1
        tick(
            f"explore {opts.store}: {result.schedules} schedules, {len(result.found)} "
            f"violation(s), {spent:.1f}s"
        )
        if driven.violations:
            keeper.offer(driven)
            v = driven.violations[0]
            raise _error(v.key)(f"{v.key} at {v.label}: {v.message}")

    try:
        example()
    except _BudgetSpent:
        pass
    except _Lost as lost:
        raise lost.error from None
    except (ViolationFound, ExceptionGroup):
        pass  # each found violation is already kept; Hypothesis has shrunk them


def _portfolio(
    opts: ExploreOptions,
    config: Config,
    pool: SessionPool | None,
    keeper: _Keeper,
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
    keeper: _Keeper,
    reporter: Reporter,
) -> None:
    result = keeper.result
    deadline = _deadline(opts)
    progress = _progress(opts, reporter, skipped=True)

    actors = config.roster()
    if opts.strategy == "exhaustive":
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
            moves=clock_moves(keeper.system) if config.clock and opts.clock_moves else (),
            most_moves=opts.clock_moves,
            faults=config.faults if opts.clock_moves else None,
        )
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
    result.schedules, result.skipped, result.complete = r.explored, r.skipped, r.complete
    if r.moved or r.faulted or config.faults or opts.clock_moves:
        result.detail = f"{opts.strategy}: {r.extras()}"
    keeper.offer_all(r.found)


def _report(
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
