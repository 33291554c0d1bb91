"""``racesim bench engine``: the engine's cost over its own statements, and blocked-step latency.

Both sides run the reference system's T+0..T+4 scenario on its ``token`` store,
on the same pooled sessions of one database, in the same process, alternating
rounds:

- engine: ``execute`` with the pool (reset, programs, worker threads, blocked-step
  polling, watched-state reads, model shadow, checks, history);
- plain loop: the very statements the engine sent (the reset, the clock writes,
  each store call, each watched-state read), executed directly with psycopg on
  the same connections, with no threads, programs or checks.

Blocked-step latency comes from the reference system's maintenance-lock scenario.

The figure is engine schedules/s divided by plain-loop schedules/s (target >= 0.75).
"""

from __future__ import annotations

import contextlib
import statistics
import time
from pathlib import Path
from typing import Any

from racesim.engine import clock as vclock
from racesim.engine.loop import Engine, Options, execute
from racesim.engine.pool import SessionPool
from racesim.engine.prepare import preparer
from racesim.formats.scenario import load
from racesim.model.plan import Plan, label_offset
from racesim.provision.databases import Databases
from racesim.provision.provide import provide
from racesim.store import baseline
from racesim.system import DEFAULT_SYSTEM, Session, System, resolve

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
SCENARIO = SCENARIOS / baseline.THROUGHPUT
BLOCKING = SCENARIOS / baseline.BLOCKING
STORE = "token"
TARGET_RATIO = 0.75
TARGET_DETECT_MS = 5.0


def run(pg: str = "auto", dsn: str | None = None, repeat: int = 5) -> list[str]:
    system = resolve(DEFAULT_SYSTEM)  # the reference: its scenarios and baselines
    plan = load(SCENARIO, system).plan if SCENARIO.exists() else _fallback_plan()
    with (
        provide(pg, dsn) as server,
        Databases(server, preparer(system), label="racesim_bench") as dbs,
    ):
        conninfo = server.conninfo(dbs.create())
        with SessionPool(conninfo, STORE, system) as pool:
            ratio_lines = _throughput(plan, pool, repeat, system)
            detect_lines = _detection(pool, repeat, system)
    return ratio_lines + detect_lines


def _throughput(plan: Plan, pool: SessionPool, repeat: int, system: System) -> list[str]:
    rounds = max(repeat, 3)
    per_round = 40
    options = Options()
    history = execute(plan, STORE, options=options, pool=pool, system=system).history  # warm-up
    engine_rates, plain_rates = [], []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(per_round):
            execute(plan, STORE, options=options, pool=pool, system=system)
        engine_rates.append(per_round / (time.perf_counter() - started))
        started = time.perf_counter()
        for _ in range(per_round):
            _plain(plan, pool, history.events)
        plain_rates.append(per_round / (time.perf_counter() - started))
    engine, plain = statistics.median(engine_rates), statistics.median(plain_rates)
    ratio = engine / plain
    steps = sum(1 for e in history.events if e.kind != "clock")
    return [
        f"engine throughput ({steps}-step T+0..T+4 schedule, {STORE} store, {rounds} rounds"
        f" x {per_round} schedules):",
        f"  engine      {engine:8.1f} schedules/s",
        f"  plain loop  {plain:8.1f} schedules/s  (same statements, same connections)",
        f"  ratio       {ratio:8.2f}  (target >= {TARGET_RATIO}) "
        + ("ok" if ratio >= TARGET_RATIO else "MISSED"),
    ]


def _plain(plan: Plan, pool: SessionPool, events: Any) -> None:
    """The engine's statements, sent straight from a loop."""
    pool.reset()
    conns = {a.name: pool.session(i)[0] for i, a in enumerate(plan.actors)}
    clock = vclock.VirtualClock(vclock.EPOCH + plan.start_offset(), pool.monitor)
    variant = pool.variant
    stores = {
        name: variant.open(Session(conn, None, i)) for i, (name, conn) in enumerate(conns.items())
    }
    for event in events:
        if event.label and event.kind != "clock":
            clock.set(vclock.EPOCH + label_offset(event.label))
        method = getattr(stores.get(event.actor), event.call, None)
        if event.kind in ("step", "done") and callable(method):
            with contextlib.suppress(Exception):  # the same refusals the engine records
                method(*event.args)
        variant.watch(pool.monitor)


def _detection(pool: SessionPool, repeat: int, system: System) -> list[str]:
    plan = load(BLOCKING, system).plan
    samples = []
    for _ in range(max(repeat, 3) * 10):
        engine = Engine(plan, STORE, pool.conninfo, Options(), pool, system=system)
        try:
            engine.open()
            out = engine.run()
        finally:
            engine.close()
        samples += [e.blocked_after * 1000 for e in out.history.events if e.kind == "wait"]
    median, worst = statistics.median(samples), max(samples)
    return [
        f"blocked-step detection ({len(samples)} row-lock waits):",
        f"  median {median:.2f} ms, worst {worst:.2f} ms  (target <= {TARGET_DETECT_MS} ms) "
        + (
            "ok"
            if worst <= TARGET_DETECT_MS
            else "MISSED (worst)"
            if median <= TARGET_DETECT_MS
            else "MISSED"
        ),
    ]


def _fallback_plan() -> Plan:
    raise FileNotFoundError(f"{SCENARIO} is missing; run the benchmark from a checkout")
