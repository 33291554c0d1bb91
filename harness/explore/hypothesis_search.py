"""The ``hypothesis`` strategy: schedules drawn as Hypothesis data
(:mod:`racesim.explore.strategies`), each run to its end; a failure is shrunk by
Hypothesis to fewer runs, steps and context switches, and kept as it is found.

Example::

    hypothesis_search(opts, config, pool, keeper, reporter)
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import hypothesis
from hypothesis import given

from racesim.engine.pool import SessionPool
from racesim.errors import HarnessError
from racesim.explore.drive import drive
from racesim.explore.keeper import SHRINK_ALLOWANCE, Keeper, ViolationFound, violation_error
from racesim.explore.profiles import settings_for
from racesim.explore.strategies import Schedule, schedules
from racesim.explore.summary import ticker
from racesim.report.text import Reporter
from racesim.system import Config, spec_of

if TYPE_CHECKING:
    from racesim.explore.options import ExploreOptions

__all__ = ["hypothesis_search"]


class _BudgetSpent(BaseException):
    """Ends a Hypothesis run from inside the test (not an Exception: never shrunk)."""


class _Lost(BaseException):
    """The harness lost PostgreSQL: ends the Hypothesis run at once (never shrunk,
    never reported as an example), to be raised again as the HarnessError it holds."""

    def __init__(self, error: HarnessError) -> None:
        super().__init__(str(error))
        self.error = error


def hypothesis_search(
    opts: ExploreOptions,
    config: Config,
    pool: SessionPool | None,
    keeper: Keeper,
    reporter: Reporter,
) -> None:
    system = keeper.system
    result = keeper.result
    tick = ticker(reporter)
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
            raise violation_error(v.key)(f"{v.key} at {v.label}: {v.message}")

    try:
        example()
    except _BudgetSpent:
        pass
    except _Lost as lost:
        raise lost.error from None
    except (ViolationFound, ExceptionGroup):
        pass  # each found violation is already kept; Hypothesis has shrunk them
