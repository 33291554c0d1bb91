"""``racesim explore FILE.spec``: interleavings beyond the listed permutations, SQL
invariants, shrinking, and a saved .spec that the real isolationtester reproduces."""

from __future__ import annotations

from pathlib import Path

import pytest
from commands import racesim
from spec_support import Target, target15, write_spec

from racesim.errors import InputError
from racesim.spec.explore import Invariant, Search, load_invariants
from racesim.spec.parse import load

__all__ = ["target15"]

HERE = Path(__file__).resolve().parent / "specs"
BOOKING = HERE / "double-booking.spec"


def test_explore_finds_shrinks_and_saves_what_isolationtester_reproduces(
    target15: Target, tmp_path: Path
) -> None:
    dsn = target15.dbs.server.conninfo()
    done = racesim("explore", str(BOOKING), "--out", str(tmp_path), "--dsn", dsn)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "invariant one-person-per-seat broken" in done.stdout
    assert "shrunk: permutation a_book b_book a_commit b_commit" in done.stdout
    saved = tmp_path / "double-booking-one-person-per-seat.spec"
    assert saved.exists()
    # The listed permutation holds; only an interleaving beyond it breaks.
    _status, listed = target15.reference(BOOKING)
    assert b"people" not in listed
    status, reference = target15.reference(saved)
    assert status == 0
    assert b"step racesim_check_one_person_per_seat:" in reference
    assert b"seat|people\n----+------\n   1|     2\n(1 row)\n" in reference
    completed, ours = target15.racesim(load(saved))
    assert completed and ours == reference


def test_random_schedules_are_pct_s(tmp_path: Path) -> None:
    """Seeded random schedules are racesim explore's pct strategy, as for any system
    (same seed, same files: tests/test_spec_system.py); --strategy random says so."""
    done = racesim("explore", str(BOOKING), "--strategy", "random", "--out", str(tmp_path))
    assert done.returncode == 2, done.stdout + done.stderr
    assert "got 'random'; fix: --strategy pct draws seeded random schedules" in done.stderr
    assert not list(tmp_path.iterdir())


def test_an_invariant_that_holds_everywhere(target15: Target, tmp_path: Path) -> None:
    _path, spec = write_spec(
        tmp_path,
        """
setup { CREATE TABLE seats (seat int PRIMARY KEY, person text); }
teardown { DROP TABLE seats; }
session alice
setup { BEGIN; }
step a_book { INSERT INTO seats VALUES (1, 'alice') ON CONFLICT DO NOTHING; }
step a_commit { COMMIT; }
session bob
setup { BEGIN; }
step b_book { INSERT INTO seats VALUES (1, 'bob') ON CONFLICT DO NOTHING; }
step b_commit { COMMIT; }
""",
    )
    inv = (Invariant("one", "SELECT seat FROM seats GROUP BY seat HAVING count(*) > 1", 1),)
    name = target15.dbs.create()
    try:
        search = Search(spec, inv)
        assert search.run(target15.dbs.server.conninfo(name)) is None
    finally:
        target15.dbs.drop(name)
    # 6 interleavings; those where a session's step is due while it waits are not real.
    assert search.tried == 6
    assert search.invalid >= 1


def test_invariant_sql_that_does_not_run_is_bad_input(target15: Target, tmp_path: Path) -> None:
    spec = load(BOOKING)
    bad = (Invariant("typo", "SELECT seet FROM seats", 4),)
    name = target15.dbs.create()
    try:
        with pytest.raises(InputError, match=r"line 4: invariant 'typo'.*seet"):
            Search(spec, bad).run(target15.dbs.server.conninfo(name))
    finally:
        target15.dbs.drop(name)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[invariants]\nx = 1\n", ":2: invariant 'x' is not an SQL string"),
        ("[other]\n", "no [invariants] table"),
        ("[invariants\n", ":1: not TOML"),
    ],
)
def test_bad_invariants_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "x.spec.toml"
    path.write_text(text)
    with pytest.raises(InputError, match=message.replace("[", r"\[")):
        load_invariants(path)


def test_explore_refusals(tmp_path: Path) -> None:
    spec = tmp_path / "lonely.spec"
    spec.write_text("session a step x { SELECT 1; }\n")
    done = racesim("explore", str(spec))
    assert done.returncode == 2
    assert "no invariants; fix: write" in done.stderr
    done = racesim("explore", str(BOOKING), "--strategy", "pct", "--step-timeout", "5")
    assert done.returncode == 2
    assert "--step-timeout: --strategy pct runs the spec's system" in done.stderr
    done = racesim("explore", str(BOOKING), "--seed", "3")
    assert done.returncode == 2
    assert "--seed: the exhaustive strategy draws nothing" in done.stderr
    done = racesim("explore", str(BOOKING), "--strategy", "dfs")
    assert done.returncode == 2
    assert "expected exhaustive, hypothesis or pct" in done.stderr
    assert "Traceback" not in done.stderr
