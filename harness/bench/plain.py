"""The baselines ``racesim bench explore`` measures racesim against: plain
Hypothesis tests over the bare statements of a race on psycopg (the legacy
foreign clear, the job queue's double claim), timed as racesim's search is, and
a bare Hypothesis state machine doing one UPDATE per step.

Example::

    found, calls, setups = bare_foreign_clear(dbs, 5)  # per seed: seconds, shrunk calls
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

import psycopg
from hypothesis import Phase, given, settings
from hypothesis import seed as hseed
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule, run_state_machine_as_test

from racesim.engine.sessions import open_session
from racesim.explore.machines import RaceFound
from racesim.provision.databases import Databases
from racesim.store import baseline

__all__ = ["BareMachine", "bare", "bare_double_claim", "bare_foreign_clear", "rate"]


_RESET_QUEUE = "TRUNCATE jobs, job_results RESTART IDENTITY"
_ENQUEUE = "INSERT INTO jobs (payload, enqueued_at) VALUES ('job', NOW())"
_FIND = (
    "SELECT id FROM jobs WHERE (status = 'queued' OR (status = 'running' AND lease_until"
    " <= NOW())) ORDER BY id LIMIT 1"
)
_CLAIM = (
    "UPDATE jobs SET status = 'running', claimed_by = %s, attempts = attempts + 1,"
    " lease_until = NOW() + interval '30 seconds' WHERE id = %s RETURNING id"
)


def bare_double_claim(dbs: Databases, seeds: int) -> tuple[list[float], list[int], list[float]]:
    return bare(dbs, seeds, _bare_claim_seed)


BareSeed = Callable[[list[psycopg.Connection[Any]], int, float], tuple[list[float], list[int]]]


def bare(dbs: Databases, seeds: int, one: BareSeed) -> tuple[list[float], list[int], list[float]]:
    """A plain Hypothesis test per seed, timed as racesim's search is: from before its
    fresh database and its two sessions to its first finding. One round first is not
    measured (a process's first Hypothesis run pays more, as its first search does)."""
    found: list[float] = []
    calls: list[int] = []
    setups: list[float] = []
    for seed in (seeds, *range(seeds)):
        start = time.perf_counter()
        name = dbs.create()
        try:
            conns = [open_session(dbs.server.conninfo(name)) for _ in range(2)]
            setup = time.perf_counter() - start
            try:
                first, last = one(conns, seed, start)
            finally:
                for c in conns:
                    c.close()
        finally:
            dbs.drop(name)
        if seed != seeds:
            found += first
            calls += last
            setups += [setup] if first else []
    return found, calls, setups


def _bare_claim_seed(
    conns: list[psycopg.Connection[Any]], seed: int, start: float
) -> tuple[list[float], list[int]]:
    """Plain Hypothesis: one job, two workers each finding then claiming; found when
    both hold a claim on the same job."""

    def double_claim(steps: list[tuple[int, str]]) -> bool:
        conns[0].execute(_RESET_QUEUE)
        conns[0].execute(_ENQUEUE)
        seen: list[int | None] = [None, None]
        holders: dict[int, set[int]] = {}
        for who, op in steps:
            if op == "find":
                row = conns[who].execute(_FIND).fetchone()
                seen[who] = int(row[0]) if row else None
                continue
            job = seen[who]
            if job is None:
                continue
            if conns[who].execute(_CLAIM, (f"w{who}", job)).fetchone() is not None:
                holders.setdefault(job, set()).add(who)
            if len(holders.get(job, ())) > 1:
                return True
        return False

    return _plain(seed, start, ["find", "claim"], double_claim)


def _plain(
    seed: int, start: float, ops: list[str], broken: Callable[[list[tuple[int, str]]], bool]
) -> tuple[list[float], list[int]]:
    """Plain Hypothesis (seed ``seed``, up to 1000 examples, shrunk) over lists of
    (worker 0 or 1, one of ``ops``): the seconds from ``start`` to the first list that
    ``broken`` says breaks the store, and the length of the last such list it shrank to."""
    first: list[float] = []
    last: list[int] = []

    @settings(
        database=None, deadline=None, max_examples=1000, phases=[Phase.generate, Phase.shrink]
    )
    @hseed(seed)
    @given(st.lists(st.tuples(st.integers(0, 1), st.sampled_from(ops))))
    def bare(steps: list[tuple[int, str]]) -> None:
        if broken(steps):
            if not first:
                first.append(time.perf_counter() - start)
            last[:] = [len(steps)]
            raise AssertionError("broken")

    with contextlib.suppress(AssertionError):
        bare()
    return first, last


def bare_foreign_clear(dbs: Databases, seeds: int) -> tuple[list[float], list[int], list[float]]:
    return bare(dbs, seeds, _bare_seed)


def _bare_seed(
    conns: list[psycopg.Connection[Any]], seed: int, start: float
) -> tuple[list[float], list[int]]:
    """Plain Hypothesis over the two bare statements: time to the first foreign clear."""

    def foreign_clear(calls: list[tuple[int, str]]) -> bool:
        conns[0].execute(baseline.RESET)
        holder = None
        for who, op in calls:
            if op == "take":
                if conns[who].execute(baseline.TAKE).rowcount == 1:
                    holder = who
                continue
            conns[who].execute(baseline.DROP)
            if holder is not None and holder != who:
                return True
            holder = None
        return False

    return _plain(seed, start, ["take", "drop"], foreign_clear)


class BareMachine(RuleBasedStateMachine):
    conn: Any = None

    @rule()
    def update(self) -> None:
        self.conn.execute(baseline.TOUCH)


def rate(machine: type[RuleBasedStateMachine], examples: int) -> float:
    count = [0]
    original = machine.teardown

    def teardown(self: RuleBasedStateMachine) -> None:
        count[0] += 1
        original(self)

    machine.teardown = teardown  # type: ignore[method-assign]
    s = settings(
        max_examples=examples,
        stateful_step_count=20,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        derandomize=True,
    )
    start = time.perf_counter()
    with contextlib.suppress(RaceFound):
        run_state_machine_as_test(machine, settings=s)
    return count[0] / (time.perf_counter() - start)
