"""``racesim bench spec``: PostgreSQL's isolation specs through racesim and through isolationtester.

Both run every spec of a folder (by default the 30 of ``../shared/isolation``) on the
same server in the same run, each on a fresh database, alternating which goes
first; per spec the best of ``repeat`` rounds counts. racesim runs in process (its
connections opened per spec, as isolationtester opens its own); isolationtester is
started as a program per spec, as pg_isolation_regress starts it. The figure is
racesim's total time over isolationtester's (target <= 0.7); each output is also
compared, and a spec whose outputs differ is named.

``--per-process`` measures each spec as a developer runs one from a shell, so each
side pays for its own database: ``racesim run FILE.spec`` as a program of its own
(interpreter, imports, its database made from ``template0`` and dropped, on the
same server, given as ``RACESIM_DSN``) against ``createdb -T template0`` +
``isolationtester`` + ``dropdb``, three programs (target <= 1.0). That baseline is the
lightest way to give isolationtester a fresh database: pg_regress makes its own
from ``template0`` too, but through psql, with six ``ALTER DATABASE ... SET`` after
it. Both reach the server the same way (libpq's ``PG*`` variables, the same role and
password), and each database is made with the server's default clone strategy. racesim runs as installed: its
modules byte-compiled, as ``pip install`` leaves them (an untimed first run writes
the bytecode to a scratch ``PYTHONPYCACHEPREFIX``; without it, an environment with
``PYTHONDONTWRITEBYTECODE`` set would compile every module of an editable install on
each start). Beside each row, the same spec run in the benchmark's own process
(database made, spec run, database dropped, as ``racesim run`` does once started)
shows how much of racesim's time is starting a program.
"""

from __future__ import annotations

import contextlib
import io
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from racesim.errors import InputError, ProvisionError
from racesim.provision.databases import Databases
from racesim.provision.provide import Server
from racesim.spec.databases import spec_databases
from racesim.spec.parse import Spec, load
from racesim.spec.run import Sink, SpecAborted, run_spec
from racesim.spec.tool import run_isolationtester, tool_for_version

__all__ = ["DEFAULT_SPECS", "PER_PROCESS_TARGET", "TARGET_RATIO", "run"]

TARGET_RATIO = 0.7
PER_PROCESS_TARGET = 1.0
SETTLE = 0.2
"""What ``racesim run`` gives a spec's closed sessions to leave its database before
the drop (racesim.cli.spec.SETTLE; bench does not import the command line)."""
DEFAULT_SPECS = (
    Path(__file__).resolve().parents[2].parent / "shared" / "isolation" / "pg15" / "specs"
)


def _racesim(spec: Spec, dbs: Databases) -> tuple[float, bytes]:
    name = dbs.create()
    buf = io.BytesIO()
    try:
        started = time.perf_counter()
        with contextlib.suppress(SpecAborted):
            run_spec(spec, dbs.server.conninfo(name), Sink(buf.write, buf.write))
        return time.perf_counter() - started, buf.getvalue()
    finally:
        dbs.drop(name)


def _racesim_started(spec: Spec, dbs: Databases) -> float:
    """What ``racesim run FILE.spec`` does once started: a database made, the spec
    run, the database dropped once its sessions left."""
    buf = io.BytesIO()
    started = time.perf_counter()
    name = dbs.create()
    try:
        with contextlib.suppress(SpecAborted):
            run_spec(spec, dbs.server.conninfo(name), Sink(buf.write, buf.write))
    finally:
        dbs.drop(name, settle=SETTLE)
    return time.perf_counter() - started


def _reference(tool: Path, path: Path, dbs: Databases) -> tuple[float, bytes]:
    name = dbs.create()
    try:
        started = time.perf_counter()
        _status, out = run_isolationtester(tool, dbs.server.conninfo(name), path)
        return time.perf_counter() - started, out
    finally:
        dbs.drop(name)


def _server_env(server: Server) -> dict[str, str]:
    """libpq's variables naming ``server`` (the password in PGPASSWORD, never on a
    command line; a DSN without one keeps where libpq found it, PGPASSWORD or
    PGPASSFILE), and RACESIM_DSN for racesim."""
    p = server.params
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PG", "RACESIM_")) and k != "PYTHONDONTWRITEBYTECODE"
    }
    env.update(PGHOST=p["host"], PGPORT=p["port"], PGUSER=p["user"], PGDATABASE=p["dbname"])
    if "password" in p:
        env["PGPASSWORD"] = p["password"]
    else:
        env.update({k: os.environ[k] for k in ("PGPASSWORD", "PGPASSFILE") if k in os.environ})
    env["RACESIM_DSN"] = "postgresql://"
    return env


@contextmanager
def _bytecode(env: dict[str, str]) -> Iterator[dict[str, str]]:
    """``env`` with a scratch folder for the bytecode racesim's programs write and
    read (removed afterwards), so they start as an installed racesim does."""
    with tempfile.TemporaryDirectory(prefix="racesim-bench-pyc-") as folder:
        yield {**env, "PYTHONPYCACHEPREFIX": folder}


def _racesim_program() -> list[str]:
    beside = Path(sys.executable).parent / "racesim"
    return (
        [str(beside)] if os.access(beside, os.X_OK) else [sys.executable, "-m", "racesim.cli.main"]
    )


def _racesim_process(path: Path, env: dict[str, str]) -> tuple[float, bytes]:
    started = time.perf_counter()
    done = subprocess.run(
        [*_racesim_program(), "run", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        timeout=600,
        check=False,
    )
    return time.perf_counter() - started, done.stdout


def _reference_process(tool: Path, path: Path, env: dict[str, str]) -> tuple[float, bytes]:
    bindir = tool.parents[5] / "bin" if (tool.parents[5] / "bin").is_dir() else None
    name = f"racesim_bench_{os.getpid()}_{secrets.token_hex(4)}"

    def program(what: str) -> str:
        return str(bindir / what) if bindir is not None else what

    started = time.perf_counter()
    # -w: never ask for a password (a missing one fails instead of waiting on a prompt)
    subprocess.run([program("createdb"), "-w", "-T", "template0", name], env=env, check=True)
    try:
        with path.open("rb") as stdin:
            done = subprocess.run(
                [str(tool), f"dbname={name}"],
                stdin=stdin,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=env,
                timeout=600,
                check=False,
            )
    finally:
        subprocess.run([program("dropdb"), "-w", name], env=env, check=True)
    return time.perf_counter() - started, done.stdout


def run(
    pg: str = "auto",
    dsn: str | None = None,
    repeat: int = 3,
    folder: str | None = None,
    *,
    per_process: bool = False,
) -> list[str]:
    where = Path(folder) if folder else DEFAULT_SPECS
    paths = sorted(where.glob("*.spec")) if where.is_dir() else []
    if not paths:
        raise InputError(
            f"bench spec: no .spec files in {where}; fix: pass --specs DIR (PostgreSQL's "
            "src/test/isolation/specs, or ../shared/isolation/pg15/specs beside the checkout)"
        )
    specs = [load(p) for p in paths]
    rounds = max(1, repeat)
    lines: list[str] = []
    with spec_databases(pg, dsn) as dbs:
        tool = tool_for_version(dbs.server.version)
        if tool is None:
            raise ProvisionError(
                f"bench spec: no isolationtester of PostgreSQL {dbs.server.version} on this "
                "machine; fix: install the server package (it ships the pgxs tree)"
            )
        lines.append(
            f"bench spec: {len(specs)} specs on {dbs.server.describe()}, best of {rounds}; "
            f"isolationtester {tool}"
        )
        if per_process:
            lines.append(
                "createdb+isolationtester+dropdb, racesim run FILE.spec: one process per spec;"
                " racesim byte-compiled as installed; 'in process': the same spec made, run"
                " and dropped in this process"
            )
            loaded = dict(zip(paths, specs, strict=True))
            # In process, databases are made as racesim run makes them on a server
            # given by DSN (the server's own clone strategy).
            with (
                _bytecode(_server_env(dbs.server)) as env,
                Databases(dbs.server, None, label="racesim_spec", strategy="default") as own,
            ):
                _racesim_process(paths[0], env)  # writes the bytecode; not measured
                return lines + _table(
                    paths,
                    rounds,
                    lambda path: _reference_process(tool, path, env),
                    lambda path: _racesim_process(path, env),
                    "reference",
                    PER_PROCESS_TARGET,
                    started=lambda path: _racesim_started(loaded[path], own),
                )
        loaded = dict(zip(paths, specs, strict=True))
        return lines + _table(
            paths,
            rounds,
            lambda path: _reference(tool, path, dbs),
            lambda path: _racesim(loaded[path], dbs),
            "isolationtester",
            TARGET_RATIO,
        )


def _table(
    paths: list[Path],
    rounds: int,
    reference: Callable[[Path], tuple[float, bytes]],
    ours: Callable[[Path], tuple[float, bytes]],
    baseline: str,
    target: float,
    *,
    started: Callable[[Path], float] | None = None,
) -> list[str]:
    """A row per spec (best of ``rounds``, the two sides in turn) and the total's ratio;
    with ``started``, racesim's in-process time of each spec beside it."""
    head = f"{'spec':<28} {baseline:>16} {'racesim':>10} {'ratio':>7}"
    lines = [head + (f" {'in process':>13}" if started else "") + "  output"]
    total_ref = total_ours = total_in = 0.0
    differ: list[str] = []
    for path in paths:
        ref_times, our_times, in_times = [], [], []
        same = True
        for k in range(rounds):
            if k % 2 == 0:
                t_ref, out_ref = reference(path)
                t_ours, out_ours = ours(path)
            else:
                t_ours, out_ours = ours(path)
                t_ref, out_ref = reference(path)
            if started is not None:
                in_times.append(started(path))
            ref_times.append(t_ref)
            our_times.append(t_ours)
            same = same and out_ref == out_ours
        best_ref, best_ours = min(ref_times), min(our_times)
        total_ref += best_ref
        total_ours += best_ours
        if not same:
            differ.append(path.stem)
        row = (
            f"{path.stem:<28} {best_ref * 1000:>13.1f} ms {best_ours * 1000:>7.1f} ms "
            f"{best_ours / best_ref:>7.2f}"
        )
        if in_times:
            total_in += min(in_times)
            row += f" {min(in_times) * 1000:>10.1f} ms"
        lines.append(f"{row}  {'same' if same else 'DIFFERS'}")
    ratio = total_ours / total_ref
    verdict = "met" if ratio <= target else "NOT met"
    lines.append(
        f"total: {baseline} {total_ref:.2f} s, racesim {total_ours:.2f} s: ratio {ratio:.2f}"
        f" (target <= {target}: {verdict}); outputs "
        + ("identical on every spec" if not differ else f"differ on {', '.join(differ)}")
    )
    if started is not None:
        start_ms = (total_ours - total_in) / len(paths) * 1000
        lines.append(
            f"racesim in process: {total_in:.2f} s (ratio {total_in / total_ref:.2f}); starting"
            f" racesim (interpreter, imports, connecting) costs the rest, {start_ms:.0f} ms a spec"
        )
    return lines
