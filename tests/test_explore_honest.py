"""Exploration that is honest about what it searched: transactions left open by a
stopped run, PCT on short runs, seeds that decide the search, a sound reduction,
every distinct violation saved, disjoint shards."""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from racesim.cli.main import main
from racesim.errors import EXIT_FOUND
from racesim.explore.run import Explored, ExploreOptions, explore
from racesim.provision.databases import Databases
from racesim.provision.provide import Server
from racesim.report.text import Reporter
from racesim.runner import Prepared

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

from txn_systems import LEDGER  # noqa: E402


def _explore(dbs: Databases, out: Path, **kw: object) -> tuple[Explored, str]:
    text = io.StringIO()
    opts = ExploreOptions(out=out, example_db=False, **kw)  # type: ignore[arg-type]
    return explore(opts, dbs, Reporter(text)), text.getvalue()


@pytest.fixture(scope="module")
def ledger_dbs(racesim_server: Server) -> Iterator[Databases]:
    made = Prepared(racesim_server)
    yield made.for_system(LEDGER)
    made.close()


# -- transactions held open across steps ------------------------------------


@pytest.mark.parametrize(
    ("config", "key"), [("bumps", "no-lost-update"), ("transfers", "no-deadlock")]
)
def test_a_stopped_runs_open_transaction_is_ended_before_the_next_reset(
    ledger_dbs: Databases, tmp_path: Path, config: str, key: str
) -> None:
    # Each schedule stops at its first violation with another run's transaction
    # open (holding row locks the next reset's UPDATE needs).
    result, text = _explore(
        ledger_dbs,
        tmp_path,
        store="db",
        strategy="exhaustive",
        config=config,
        system=LEDGER,
        max_examples=400,
    )
    assert key in result.found, text
    saved = result.files[key].read_text()
    assert f'breaks = "{key}"' in saved
    assert not result.flaky, text


def test_the_cli_finds_the_lost_update_of_a_module_system(
    racesim_server: Server,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # --system module:ATTR is imported from the current folder
    (tmp_path / "txn_systems.py").write_text((HERE / "txn_systems.py").read_text())
    monkeypatch.chdir(tmp_path)
    argv = [
        "explore",
        "--system",
        "txn_systems:LEDGER",
        "--store",
        "db",
        "--strategy",
        "hypothesis",
        "--config",
        "bumps",
        "--max-examples",
        "100",
        "--seed",
        "3",
        "--out",
        "out",
        "--pg",
        "dsn",
        "--dsn",
        racesim_server.conninfo("postgres"),
    ]
    status = main(argv)
    out = capsys.readouterr()
    assert status == EXIT_FOUND, out.out + out.err
    assert "found 1 violation(s) (no-lost-update)" in out.out
    assert list((tmp_path / "out").glob("db-no-lost-update-hypothesis-bumps-seed3.toml"))
