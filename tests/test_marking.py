"""The ``postgres`` marker (tests/marking.py): set on exactly the tests that need a
server or a child process, so ``pytest -m "not postgres"`` runs the others."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _collected(*args: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert done.returncode in (0, 5), done.stdout + done.stderr  # 5: nothing collected
    return {line.split("::", 1)[1] for line in done.stdout.splitlines() if "::" in line}


def test_server_fixtures_and_child_processes_are_marked_and_nothing_else() -> None:
    files = ("tests/test_counter_system.py", "tests/test_public.py")
    fast = _collected("-m", "not postgres", *files)
    slow = _collected("-m", "postgres", *files)
    assert not fast & slow
    # the in-memory engine and explorer tests run without a server
    assert "test_exhaustive_runs_every_interleaving_without_reduction" in fast
    assert "test_pct_finds_the_lost_update_and_is_seeded" in fast
    # a test on a fixture of its module that sits on racesim_server
    assert "test_both_reads_first_on_a_server[naive-1-1]" in slow
    # a test whose module helper starts a child process
    assert "test_importing_racesim_imports_no_machinery" in slow
    assert "test_an_unknown_name_is_an_attribute_error" in fast
