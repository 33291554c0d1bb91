"""PostgreSQL's own isolationtester through racesim's proxy prints what it prints
directly, on the 30 shared isolation specs: every round of its sessions waits at
the gate and is released at once, and its lock-wait detection (by the backend pids
the proxy hands on in BackendKeyData) sees the real backends."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from spec_support import SPECS, Target, need_shared, target15
from test_proxy import AutoRelease

from racesim.proxy.gate import Gate
from racesim.proxy.listener import Listener
from racesim.proxy.upstream import open_upstream
from racesim.spec.tool import run_isolationtester

__all__ = ["target15"]


@pytest.mark.parametrize("spec", SPECS or [None], ids=lambda p: p.stem if p else "none")
def test_isolationtester_through_the_proxy_prints_what_it_prints_directly(
    target15: Target,
    spec: Path | None,
) -> None:
    need_shared()
    assert spec is not None
    env = {**os.environ, "PGISOLATIONTIMEOUT": "20"}
    status, direct = target15.reference(spec)
    name = target15.dbs.create()
    gate = Gate("isolationtester")
    conninfo = target15.dbs.server.conninfo(name)
    listener = Listener(gate, lambda p: open_upstream(conninfo, p, "isolationtester"))
    releaser = AutoRelease(gate)
    try:
        place = listener.env()
        proxied = f"host={place['PGHOST']} port={place['PGPORT']} user=racesim dbname=racesim"
        got_status, through = run_isolationtester(
            target15.tool, proxied, spec, env=env, timeout=140
        )
    finally:
        releaser.stop()
        listener.close()
        target15.dbs.drop(name)
    assert gate.failure is None
    assert (got_status, through.decode()) == (status, direct.decode())
