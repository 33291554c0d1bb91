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
    """No options: one move per schedule, to the lease's exact end, right after a
    step that took a lease; and each crash a worker may have."""
    result, text = _explore(late_dbs, tmp_path, strategy="exhaustive")
    assert LEASE_RAN_OUT in result.found, text
    assert "exhaustive: " in text and "schedule(s) with a clock move" in text
    # the counterexample: w1 holds the job, the clock goes to its lease's end, w2 looks
    calls = [getattr(e, "call", "clock") for e in result.found[LEASE_RAN_OUT].plan.entries]
    assert calls[-2:] == ["clock", "find"], calls


def test_exhaustive_default_moves_are_bounded_and_counted(
    late_dbs: Databases, tmp_path: Path
) -> None:
    """On the sound store the default search ends: every interleaving, each also with a
    move to the lease's end right after it is taken, and with each crash added."""
    result, text = _explore(late_dbs, tmp_path, strategy="exhaustive", store="skiplocked")
    assert result.complete and not result.found, text
    assert "exhaustive: all 138 distinct schedules explored, none violates" in text
    assert "exhaustive: 78 schedule(s) with a clock move, 90 with an added fault" in text


def test_pct_moves_the_clock_and_adds_the_crash(late_dbs: Databases, tmp_path: Path) -> None:
    """No options but the seed: pct's 200 schedules make a clock move in half of them."""
    result, text = _explore(late_dbs, tmp_path, strategy="pct", seed=1)
    assert LEASE_RAN_OUT in result.found, text
    assert "pct: " in text and "with an added fault" in text


def test_exhaustive_without_clock_moves_never_sees_the_lease_run_out(
    late_dbs: Databases, tmp_path: Path
) -> None:
    result, text = _explore(late_dbs, tmp_path, strategy="exhaustive", clock_moves=0)
    assert result.complete and not result.found, text
    assert "exhaustive: all 20 distinct schedules explored, none violates" in text
    assert "exhaustive: 0 schedule(s) with a clock move" not in text


def test_spread_exhaustive_search_makes_the_same_moves(
    late_dbs: Databases, tmp_path: Path, racesim_server: Server
) -> None:
    """The default moves go to every worker's part: the spread search runs the same
    138 schedules and counts the same moves and faults."""
    from racesim.explore.distribute import spread

    text = io.StringIO()
    opts = ExploreOptions(
        out=tmp_path,
        system="jobqueue",
        store="skiplocked",
        config="2workers",
        strategy="exhaustive",
    )
    status = spread(
        opts,
        ["popen", "popen"],
        pg="dsn",
        dsn=racesim_server.conninfo(),
        reporter=Reporter(text),
        system="jobqueue",
    )
    last = text.getvalue().strip().splitlines()[-1]
    assert status == 0, text.getvalue()
    assert last.startswith("exhaustive: all 138 schedules of the split and "), last
    assert last.endswith("; 78 schedule(s) with a clock move, 90 with an added fault"), last


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--clock-moves", "1"], "--clock-moves: only the exhaustive strategy takes it"),
        (["--strategy", "exhaustive", "--clock-moves", "9"], "--clock-moves: expected 0 to 3"),
    ],
)
def test_clock_moves_is_refused_where_it_cannot_take_effect(
    capsys: pytest.CaptureFixture[str], args: list[str], error: str
) -> None:
    from racesim.cli.main import main

    assert main(["explore", "--system", "jobqueue", "--store", "naive", *args]) == 2
    err = capsys.readouterr().err
    assert error in err and len(err.strip().splitlines()) == 1, err
