"""The soak command's machinery, briefly (the real soak runs for minutes, outside make test)."""

from __future__ import annotations

import io

from racesim.cli import soak
from racesim.provision.provide import Server
from racesim.report.text import Reporter


def test_short_soak_reports_memory_backends_and_throughput(pg_server: Server) -> None:
    out = io.StringIO()
    steady = soak.run(Reporter(out), minutes=0.04, window=1.0, dsn=pg_server.conninfo(), pg="dsn")
    text = out.getvalue()
    assert "window  1:" in text and "window  2:" in text
    assert "backends:" in text and "no leak" in text
    assert "memory: RSS" in text and "throughput:" in text
    assert isinstance(steady, bool)
