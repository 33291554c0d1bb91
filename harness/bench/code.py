"""``racesim bench code``: a race of plain functions against the same statements run as
a racesim program.

Two actors, ten autocommit statements each, alternating (``alice: s1``, ``bob: s1``,
...), on the same pooled sessions of one database, in the same process, alternating
rounds. Each statement changes data, so it is two steps, itself and its ``COMMIT``
(racesim.code.commits): twenty steps per actor.

- functions: each actor's function (``racesim.code``) runs in its own thread on a
  gated connection; every statement waits for its step;
- program: a generator yielding the very same twenty steps as ``sql`` calls.

Both go through the one engine (same pool, same resets, same watched-state reads).
The figure is function schedules/s divided by program schedules/s (target >= 0.7).
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import psycopg

from racesim.code import call, system
from racesim.code.checks import read_invariants, watch
from racesim.engine.loop import Options, execute
from racesim.engine.pool import SessionPool
from racesim.engine.prepare import preparer
from racesim.model.plan import Actor, Plan, Step
from racesim.provision.databases import Databases
from racesim.provision.provide import provide
from racesim.system import Call, Program, ProgramRun, RunContext, Session, System, Variant

TARGET_RATIO = 0.7
STATEMENTS = 10
STEPS = 2 * STATEMENTS
"""Each statement and its commit."""
SCHEMA = "CREATE TABLE counters (id int PRIMARY KEY, n int NOT NULL)"
FRESH = "DELETE FROM counters; INSERT INTO counters VALUES (1, 0), (2, 0)"
BUMP = "UPDATE counters SET n = n + 1 WHERE id = %s"
WATCH = "SELECT id, n FROM counters ORDER BY id"
NO_LOSS = "SELECT id FROM counters WHERE n > 10"
BUMPS = {
    1: "UPDATE counters SET n = n + 1 WHERE id = 1",
    2: "UPDATE counters SET n = n + 1 WHERE id = 2",
}
"""``BUMP`` with each counter written in, as the program sends it."""


def bump(conn: psycopg.Connection[Any], counter: int) -> str:
    """Ten autocommit statements, each bumping the actor's own counter."""
    for _ in range(STATEMENTS):
        conn.execute(BUMP, (counter,))
    return "done"


FUNCTIONS = system(
    "bench-functions",
    schema=SCHEMA,
    fresh=FRESH,
    variants={"functions": bump},
    actors={"alice": call(1), "bob": call(2)},
    invariants={"no counter past ten": NO_LOSS},
    watch_sql=WATCH,
)


def _program(ctx: RunContext) -> ProgramRun:
    counter = ctx.options["args"][0]
    for i in range(STATEMENTS):
        yield Call(f"s{2 * i + 1}", kind="sql", sql=f"BEGIN; {BUMPS[counter]}")
        yield Call(f"s{2 * i + 2}", kind="sql", sql="COMMIT")
    return "done"


def _program_system() -> System:
    """The same statements, the same watch and invariant, as a racesim program."""
    checks = read_invariants("bench-program", {"no counter past ten": NO_LOSS})
    return System(
        name="bench-program",
        variants=(
            Variant("program", open=_no_store, watch=watch(checks, WATCH, {}), reset=_fresh),
        ),
        programs={"main": Program(_program, calls=frozenset(f"s{i + 1}" for i in range(STEPS)))},
        invariants=FUNCTIONS.invariants,
        invariant_names=FUNCTIONS.invariant_names,
        show=FUNCTIONS.show,
    )


def _no_store(session: Session) -> None:
    return None


def _fresh(conn: psycopg.Connection[Any]) -> None:
    conn.execute(FRESH)


def _plan() -> Plan:
    actors = (Actor("alice", "main", {"args": [1]}), Actor("bob", "main", {"args": [2]}))
    steps = tuple(Step(a, f"s{i + 1}") for i in range(STEPS) for a in ("alice", "bob"))
    return Plan(actors, steps)


def _rate(plan: Plan, store: str, pool: SessionPool, found: System, count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        outcome = execute(plan, store, options=Options(), pool=pool, system=found)
        if outcome.checker.violations or outcome.history.stuck:
            raise RuntimeError(f"bench code: the {store} run did not hold")
    return count / (time.perf_counter() - started)


def run(pg: str = "auto", dsn: str | None = None, repeat: int = 5) -> list[str]:
    plan = _plan()
    program = _program_system()
    rounds, per_round = max(repeat, 3), 20
    with (
        provide(pg, dsn) as server,
        Databases(server, preparer(FUNCTIONS), label="racesim_bench") as dbs,
    ):
        conninfo = server.conninfo(dbs.create())
        with (
            SessionPool(conninfo, "functions", FUNCTIONS) as functions_pool,
            SessionPool(conninfo, "program", program) as program_pool,
        ):
            _rate(plan, "functions", functions_pool, FUNCTIONS, 3)  # warm-up
            _rate(plan, "program", program_pool, program, 3)
            function_rates, program_rates = [], []
            for _ in range(rounds):
                function_rates.append(
                    _rate(plan, "functions", functions_pool, FUNCTIONS, per_round)
                )
                program_rates.append(_rate(plan, "program", program_pool, program, per_round))
    functions, programs = statistics.median(function_rates), statistics.median(program_rates)
    ratio = functions / programs
    return [
        f"code throughput (two actors, {STATEMENTS} autocommit statements = {STEPS} steps"
        " each, alternating;"
        f" {rounds} rounds x {per_round} schedules):",
        f"  functions   {functions:8.1f} schedules/s  (racesim.code: threads, gated connections)",
        f"  program     {programs:8.1f} schedules/s  (the same statements as sql calls)",
        f"  ratio       {ratio:8.2f}  (target >= {TARGET_RATIO}) "
        + ("ok" if ratio >= TARGET_RATIO else "MISSED"),
    ]
