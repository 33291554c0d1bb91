"""``racesim bench proxy``: what a statement costs through racesim's proxy, against
the same statement sent directly to the server, measured in the same run.

- round trip: a client process (Python with psycopg) holds two connections, one
  straight to the server and one through a listener of the proxy whose every round
  waits at the gate until a releasing thread lets it go (as a schedule's step
  does), and sends ``SELECT 1`` on each
  in alternating batches after a warm-up batch on each; the figure is the median
  time per statement through the proxy over the median direct (target <= 2.0).
- a 12-step schedule: two command actors of six statements each (Python programs
  using psycopg), run by the engine through the proxy, one round per step,
  interleaved; against the same two programs run one after the other straight
  on the database. Both sides start the same processes; the figure is the
  schedule's time over the direct time (target <= 1.3).

Rounds alternate which side goes first; for the schedule, the best of ``repeat``
rounds counts.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from racesim.engine.loop import Options, execute
from racesim.engine.pool import SessionPool
from racesim.engine.schema import preparer
from racesim.model.plan import Actor, Plan, Step
from racesim.provision.databases import Databases
from racesim.provision.provide import provide
from racesim.proxy.gate import Gate
from racesim.proxy.listener import Listener
from racesim.proxy.system import load
from racesim.proxy.upstream import open_upstream
from racesim.system import DEFAULT_SYSTEM, resolve

__all__ = ["TARGET_ROUND_TRIP", "TARGET_SCHEDULE", "run"]

TARGET_ROUND_TRIP = 2.0
TARGET_SCHEDULE = 1.3
BATCH = 200

CLIENT = """\
import os, sys, time, psycopg
direct = psycopg.connect(os.environ["RACESIM_BENCH_DIRECT"], autocommit=True)
proxied = psycopg.connect(os.environ["RACESIM_BENCH_PROXIED"], autocommit=True)
batches, size = int(sys.argv[1]), int(sys.argv[2])
took = {"direct": [], "proxied": []}
for conn in (direct, proxied):  # warm up: neither side's first statements count
    for _ in range(size):
        conn.execute("SELECT 1")
for i in range(batches):
    pair = [("direct", direct), ("proxied", proxied)]
    for name, conn in pair if i % 2 == 0 else pair[::-1]:
        t = time.perf_counter()
        for _ in range(size):
            conn.execute("SELECT 1")
        took[name].append((time.perf_counter() - t) / size)
print(*(sorted(took[n])[len(took[n]) // 2] for n in ("direct", "proxied")))
"""

ACTOR = """\
import os, psycopg
with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as c:
    for i in range(5):
        c.execute("UPDATE bench SET n = n + 1 WHERE id = %s", (i % 2,))
    print(c.execute("SELECT sum(n) FROM bench").fetchone()[0])
"""

CONFIG = """\
setup = "CREATE TABLE IF NOT EXISTS bench (id int PRIMARY KEY, n int); INSERT INTO bench VALUES (0, 0), (1, 0) ON CONFLICT DO NOTHING"
reset = "UPDATE bench SET n = 0"
[invariants]
never = "SELECT 1 WHERE false"
[programs.bump]
command = [{python}, "actor.py"]
[actors]
a = "bump"
b = "bump"
"""


def _client(direct: str, proxied: str, batches: int) -> tuple[float, float]:
    """The median time per ``SELECT 1`` of each connection over alternating batches
    (after a warm-up batch on each)."""
    done = subprocess.run(
        [sys.executable, "-c", CLIENT, str(batches), str(BATCH)],
        env={**os.environ, "RACESIM_BENCH_DIRECT": direct, "RACESIM_BENCH_PROXIED": proxied},
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    d, p = done.stdout.split()
    return float(d), float(p)


class _Releaser:
    """Releases every parked round of ``gate`` as the engine's steps do: the thread
    that waits at the gate for the round sends it and relays its answer."""

    def __init__(self, gate: Gate) -> None:
        self.gate = gate
        self.stopped = False
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        gate = self.gate
        while not self.stopped:
            if gate.wait_for(lambda: self.stopped or gate.oldest() is not None, 0.1):
                link = gate.oldest()
                if link is not None:
                    gate.release(link)

    def stop(self) -> None:
        self.stopped = True
        self.gate.notify()
        self.thread.join(timeout=5)


def _round_trip(conninfo: str, repeat: int) -> list[str]:
    gate = Gate("bench")
    listener = Listener(gate, lambda p: open_upstream(conninfo, p, "bench"))
    releaser = _Releaser(gate)
    try:
        d, p = _client(conninfo, listener.env()["DATABASE_URL"], max(repeat, 3) * 10)
    finally:
        releaser.stop()
        listener.close()
    ratio = p / d
    return [
        f"proxy round trip: SELECT 1 direct {d * 1e6:.0f} us, through the proxy"
        f" {p * 1e6:.0f} us (median of {max(repeat, 3) * 10} alternating batches of {BATCH})",
        f"proxy round trip ratio: {ratio:.2f} (target <= {TARGET_ROUND_TRIP:.1f}):"
        f" {'met' if ratio <= TARGET_ROUND_TRIP else 'NOT met'}",
    ]


def _schedule(server_conninfo: str, dbs: Databases, repeat: int) -> list[str]:
    with tempfile.TemporaryDirectory(prefix="racesim-bench-") as folder:
        where = Path(folder)
        (where / "actor.py").write_text(ACTOR)
        python = '"' + sys.executable.replace("\\", "\\\\").replace('"', '\\"') + '"'
        (where / "racesim.toml").write_text(CONFIG.replace("{python}", python))
        system = load(where / "racesim.toml", f"commands:{where / 'racesim.toml'}")
        conninfo = dbs.server.conninfo(dbs.create())
        with SessionPool(conninfo, "default", system) as pool:
            system.prepare(pool.monitor)
            order = ["a", "b"] * 6  # 6 rounds each, interleaved: 12 steps
            plan = Plan((Actor("a", "bump"), Actor("b", "bump")), tuple(Step(a) for a in order))
            engine: list[float] = []
            direct: list[float] = []
            for i in range(max(repeat, 3)):
                for side in ("engine", "direct") if i % 2 == 0 else ("direct", "engine"):
                    started = time.perf_counter()
                    if side == "engine":
                        out = execute(plan, "default", options=Options(), pool=pool, system=system)
                        assert len(out.history.events) == 12, out.history.stuck
                        engine.append(time.perf_counter() - started)
                    else:
                        pool.reset()
                        for _ in range(2):
                            subprocess.run(
                                [sys.executable, "actor.py"],
                                cwd=where,
                                env={**os.environ, "DATABASE_URL": conninfo},
                                capture_output=True,
                                timeout=60,
                                check=True,
                            )
                        direct.append(time.perf_counter() - started)
    e, d = min(engine), min(direct)
    ratio = e / d
    return [
        f"proxy schedule: 12 steps of 2 commands through the proxy {e * 1000:.0f} ms, the"
        f" same commands direct {d * 1000:.0f} ms (best of {len(engine)})",
        f"proxy schedule ratio: {ratio:.2f} (target <= {TARGET_SCHEDULE:.1f}):"
        f" {'met' if ratio <= TARGET_SCHEDULE else 'NOT met'}",
    ]


def run(pg: str = "auto", dsn: str | None = None, repeat: int = 5) -> list[str]:
    with (
        provide(pg, dsn) as server,
        Databases(server, preparer(resolve(DEFAULT_SYSTEM)), label="racesim_bench") as dbs,
    ):
        conninfo = server.conninfo(dbs.create())
        return _round_trip(conninfo, repeat) + _schedule(conninfo, dbs, repeat)
