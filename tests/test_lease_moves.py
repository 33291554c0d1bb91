"""Exhaustive search and PCT make clock moves at a time window's boundary and add the
faults a configuration's runs may have: a lease compared with ``<`` instead of ``<=``
(a job whose lease ran out exactly now is not found) is found by every strategy on the
job queue's two-worker configuration, on real PostgreSQL."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from racesim.explore.run import Explored, ExploreOptions, explore
from racesim.provision.databases import Databases
from racesim.provision.provide import Server
from racesim.report.text import Reporter
from racesim.runner import Prepared
from racesim.systems.jobqueue import _sql
from racesim.systems.jobqueue.skiplocked import SkipLockedStore
from racesim.systems.jobqueue.system import SYSTEM, _variant

LATE = _sql.CLAIMABLE.replace("lease_until <= NOW()", "lease_until < NOW()")
LEASE_RAN_OUT = "no-lost-job/lease-ran-out"


class LateLease(SkipLockedStore):
    """Skip locked, but a lease that runs out exactly now is still held."""

    name = "late"

    def find(self) -> int | None:
        row = self.conn.execute(
            "SELECT id FROM jobs WHERE " + LATE + " ORDER BY id LIMIT 1"
        ).fetchone()
        return int(row[0]) if row else None


LATE_SYSTEM = replace(SYSTEM, variants=(*SYSTEM.variants, _variant("late", LateLease)))


@pytest.fixture(scope="module")
def late_dbs(racesim_server: Server) -> Iterator[Databases]:
    made = Prepared(racesim_server)
    yield made.for_system(LATE_SYSTEM)
    made.close()


def _explore(dbs: Databases, out: Path, **kw: object) -> tuple[Explored, str]:
    text = io.StringIO()
    opts = replace(
        ExploreOptions(
            out=out, example_db=False, system=LATE_SYSTEM, store="late", config="2workers"
        ),
        **kw,  # type: ignore[arg-type]
    )
    return explore(opts, dbs, Reporter(text)), text.getvalue()


def test_exhaustive_moves_the_clock_to_the_leases_end(late_dbs: Databases, tmp_path: Path) -> None:
    result, text = _explore(
        late_dbs, tmp_path, strategy="exhaustive", max_examples=40, clock_moves=1
    )
    assert LEASE_RAN_OUT in result.found, text
    assert "exhaustive: " in text and "schedule(s) with a clock move" in text
    # the counterexample: w1 holds the job, the clock goes to its lease's end, w2 looks
    calls = [getattr(e, "call", "clock") for e in result.found[LEASE_RAN_OUT].plan.entries]
    assert calls[-2:] == ["clock", "find"], calls


def test_pct_moves_the_clock_and_adds_the_crash(late_dbs: Databases, tmp_path: Path) -> None:
    result, text = _explore(late_dbs, tmp_path, strategy="pct", seed=1, max_examples=200)
    assert LEASE_RAN_OUT in result.found, text
    assert "pct: " in text and "with an added fault" in text


def test_exhaustive_without_clock_moves_never_sees_the_lease_run_out(
    late_dbs: Databases, tmp_path: Path
) -> None:
    result, text = _explore(late_dbs, tmp_path, strategy="exhaustive")
    assert result.complete and not result.found, text
    assert "exhaustive: all 20 distinct schedules explored, none violates" in text
    assert "exhaustive: 0 schedule(s) with a clock move, 0 with an added fault" in text


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--clock-moves", "1"], "--clock-moves: only the exhaustive strategy takes it"),
        (["--strategy", "exhaustive", "--clock-moves", "9"], "--clock-moves: expected 0 to 3"),
        (
            ["--strategy", "exhaustive", "--clock-moves", "1", "--workers", "2"],
            "--clock-moves: not with --workers or --tx",
        ),
    ],
)
def test_clock_moves_is_refused_where_it_cannot_take_effect(
    capsys: pytest.CaptureFixture[str], args: list[str], error: str
) -> None:
    from racesim.cli.main import main

    assert main(["explore", "--system", "jobqueue", "--store", "naive", *args]) == 2
    err = capsys.readouterr().err
    assert error in err and len(err.strip().splitlines()) == 1, err
