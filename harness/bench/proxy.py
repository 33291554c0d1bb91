"""``racesim bench proxy``: what a statement costs through racesim's proxy, against
the same statement sent directly to the server, measured in the same run.

- round trip: a client process (Python with psycopg) holds three connections: one
  straight to the server, one through a listener of the proxy whose every round
  waits at the gate until a releasing thread takes it, sends it and relays the
  answer (as a schedule's step does), and one through a bare Python forwarder (the
  floor for any proxy in Python, printed for reference). It sends ``SELECT 1`` on
  each in batches taken in turn, after a warm-up batch on each; the figure is the
  median time per statement through the proxy over the median direct (target <= 2.0).
- a 12-step schedule: two command actors of six statements each (Python programs
  using psycopg), run by the engine through the proxy, one round per step,
  interleaved; against the same two programs run one after the other straight
  on the database. Both sides start the same processes; the figure is the
  schedule's time over the direct time (target <= 1.3).

Rounds alternate which side goes first; for the schedule, the best of ``repeat``
rounds counts.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from racesim.engine.loop import Options, execute
from racesim.engine.pool import SessionPool
from racesim.engine.prepare import preparer
from racesim.model.plan import Actor, Plan, Step
from racesim.provision.databases import Databases
from racesim.provision.provide import provide
from racesim.proxy import framing
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
batches, size = int(sys.argv[1]), int(sys.argv[2])
conns = [psycopg.connect(url, autocommit=True) for url in sys.argv[3:]]
took = [[] for _ in conns]
for conn in conns:  # warm up: no connection's first statements count
    for _ in range(size):
        conn.execute("SELECT 1")
for i in range(batches):
    for k in [(i + j) % len(conns) for j in range(len(conns))]:  # each goes first in turn
        t = time.perf_counter()
        for _ in range(size):
            conns[k].execute("SELECT 1")
        took[k].append((time.perf_counter() - t) / size)
print(*(sorted(t)[len(t) // 2] for t in took))
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


def _client(urls: list[str], batches: int) -> list[float]:
    """The median time per ``SELECT 1`` of each connection over batches taken in turn
    (after a warm-up batch on each)."""
    done = subprocess.run(
        [sys.executable, "-c", CLIENT, str(batches), str(BATCH), *urls],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return [float(t) for t in done.stdout.split()]


class _Forwarder:
    """The floor for a proxy in Python: one connection's bytes passed both ways with
    neither gate nor parsing (select, receive, send; receive, send until the answer
    ends with ReadyForQuery)."""

    def __init__(self, conninfo: str) -> None:
        self.conninfo = conninfo
        self.dir = tempfile.mkdtemp(prefix="racesim-bench-")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(f"{self.dir}/.s.PGSQL.5432")
        self.sock.listen(1)
        self.url = f"postgresql://racesim@/racesim?host={self.dir}&port=5432"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        with contextlib.suppress(OSError, framing.Closed, framing.ProtocolError):
            client, _ = self.sock.accept()
            with client:
                _, rest = framing.Reader(client).startup()
                up = open_upstream(self.conninfo, framing.startup_parameters(rest), "bench")
                statuses = [framing.parameter_status(n, v) for n, v in up.statuses()]
                hello = [framing.auth_ok(), *statuses, framing.key_data(up.pid, 0)]
                client.sendall(b"".join([*hello, framing.ready()]))
                try:
                    while select.select([client], [], []) and (data := client.recv(65536)):
                        up.sock.sendall(data)
                        while True:
                            answer = up.sock.recv(65536)
                            client.sendall(answer)
                            if not answer or answer[-6:-5] == b"Z":
                                break
                finally:
                    up.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.thread.join(timeout=5)
        shutil.rmtree(self.dir, ignore_errors=True)


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
    bare = _Forwarder(conninfo)
    batches = max(repeat, 3) * 10
    try:
        d, p, b = _client([conninfo, listener.env()["DATABASE_URL"], bare.url], batches)
    finally:
        releaser.stop()
        listener.close()
        bare.close()
    ratio = p / d
    return [
        f"proxy round trip: SELECT 1 direct {d * 1e6:.0f} us, through the proxy"
        f" {p * 1e6:.0f} us (median of {batches} batches of {BATCH}, taken in turn)",
        f"proxy round trip floor: a bare Python forwarder (no gate, no parsing)"
        f" {b * 1e6:.0f} us, {b / d:.2f} of direct",
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
