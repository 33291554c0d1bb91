"""The soak command's machinery, briefly (the real soak runs for minutes, outside make test)."""

from __future__ import annotations

import io

import pytest

from racesim.cli import soak
from racesim.cli.main import main
from racesim.errors import EXIT_INPUT
from racesim.provision.provide import Server
from racesim.report.text import Reporter
from racesim.store.system import SYSTEM
from racesim.systems.jobqueue.system import SYSTEM as JOBQUEUE


def _verdict(text: str) -> bool:
    """What the last lines say: steady unless one of them says otherwise."""
    return not any(word in text for word in ("GREW", "LEAK", "DECAYED"))


def test_short_soak_reports_memory_backends_and_throughput(pg_server: Server) -> None:
    out = io.StringIO()
    steady = soak.run(
        Reporter(out), SYSTEM, minutes=0.04, window=1.0, dsn=pg_server.conninfo(), pg="dsn"
    )
    text = out.getvalue()
    assert text.startswith("soak: reference system, token store,")
    assert "window  1:" in text and "window  2:" in text
    assert "backends:" in text and "no leak" in text
    assert "memory: RSS" in text and "throughput:" in text
    assert steady == _verdict(text)


def test_soak_runs_the_system_system_names(
    pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    """``racesim soak --system jobqueue`` soaks the job queue, on its own store."""
    args = ["--minutes", "0.05", "--window", "1.5", "--pg", "dsn", "--dsn", pg_server.conninfo()]
    status = main(["soak", "--system", "jobqueue", *args])
    text = capsys.readouterr().out
    store = soak._default_store(JOBQUEUE)
    assert store in JOBQUEUE.variant_names and store not in SYSTEM.variant_names
    assert text.startswith(f"soak: jobqueue system, {store} store,"), text
    assert "window  2:" in text
    assert status == (0 if _verdict(text) else 1)


def test_soak_refuses_a_store_the_named_system_lacks(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status = main(["soak", "--system", "jobqueue", "--store", "token", "--minutes", "1"])
    assert status == EXIT_INPUT
    err = capsys.readouterr().err
    assert "unknown store 'token' for system jobqueue" in err
    assert "Traceback" not in err
