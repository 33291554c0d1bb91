"""A .spec as a System: Hypothesis and PCT explore it as any system, its
counterexamples replay and export as a .spec isolationtester reproduces, and the
exhaustive search skips reorderings of steps that touch nothing in common."""

from __future__ import annotations

from pathlib import Path

import pytest
from commands import racesim
from spec_support import Target, target15, write_spec

from racesim.spec.explore import Invariant, Search, load_invariants
from racesim.spec.footprints import conflict, footprints
from racesim.spec.parse import load, parse_text
from racesim.system import resolve

__all__ = ["target15"]

BOOKING = Path(__file__).resolve().parent / "specs" / "double-booking.spec"
AUTOCOMMIT = BOOKING.with_name("autocommit-booking.spec")

TWO_TABLES = """
setup { CREATE TABLE a (n int); CREATE TABLE b (n int); INSERT INTO a VALUES (0); INSERT INTO b VALUES (0); }
teardown { DROP TABLE a; DROP TABLE b; }
session s1
step s1a { UPDATE a SET n = n + 1; }
step s1b { UPDATE a SET n = n + 1; }
session s2
step s2a { UPDATE b SET n = n + 1; }
step s2b { UPDATE b SET n = n + 1; }
session s3
step s3a { SELECT n FROM a; }
"""


def test_footprints_follow_the_tables_the_sql_names() -> None:
    spec = load(BOOKING)
    invariants = load_invariants(BOOKING.with_name(BOOKING.name + ".toml"))
    prints = footprints(spec, invariants)
    assert prints["a_look"].reads == {"seats"} and not prints["a_look"].writes
    assert prints["a_book"].writes == {"seats", "invariant:one-person-per-seat"}
    assert "seats" in prints["b_commit"].writes  # a commit writes what its session touched
    assert conflict(prints["a_book"], prints["b_book"])
    assert not conflict(prints["a_look"], prints["a_look"])  # reads commute


@pytest.mark.parametrize(
    ("setup", "step"),
    [
        ("CREATE TABLE p (id int PRIMARY KEY); CREATE TABLE c (p int REFERENCES p);", "SELECT 1;"),
        (
            "CREATE TABLE t (n int); CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1';",
            "SELECT f();",
        ),
        ("CREATE TABLE t (n int);", "SELECT some_function();"),
    ],
    ids=["foreign-key", "own-function", "names-no-table"],
)
def test_unclear_sql_touches_everything(setup: str, step: str) -> None:
    spec = parse_text(
        f"setup {{ {setup} }}\nsession s\nstep x {{ {step} }}\nsession r\nstep y {{ SELECT 1; }}\n",
        "t.spec",
    )
    assert "x" not in footprints(spec, ())


def test_exhaustive_runs_one_interleaving_per_class(target15: Target, tmp_path: Path) -> None:
    _path, spec = write_spec(tmp_path, TWO_TABLES)
    name = target15.dbs.create()
    try:
        invariants = (Invariant("b-small", "SELECT n FROM b WHERE n > 5", 1),)
        search = Search(spec, invariants)
        assert search.run(target15.dbs.server.conninfo(name)) is None
    finally:
        target15.dbs.drop(name)
    # 30 interleavings; s2 touches only b, so only where s3's read of a falls matters.
    assert (search.tried, search.reordered) == (3, 27)


def test_reduction_keeps_the_interleaving_that_breaks(target15: Target, tmp_path: Path) -> None:
    """An invariant over both tables makes steps on either of them order-sensitive."""
    path, _spec = write_spec(tmp_path, TWO_TABLES)
    (tmp_path / "t.spec.toml").write_text(
        '[invariants]\nin-step = "SELECT 1 FROM a, b WHERE a.n = 1 AND b.n = 2"\n'
    )
    done = racesim(
        "explore", str(path), "--out", str(tmp_path), "--dsn", target15.dbs.server.conninfo()
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "invariant in-step broken" in done.stdout


@pytest.mark.parametrize(
    ("strategy", "spec", "permutation"),
    [
        ("hypothesis", BOOKING, "b_commit"),
        ("pct", BOOKING, "b_commit"),
        ("hypothesis", AUTOCOMMIT, "_commit"),
    ],
    ids=["hypothesis", "pct", "split-statements"],
)
def test_strategies_of_any_system_find_replay_and_save_a_spec(
    target15: Target, tmp_path: Path, strategy: str, spec: Path, permutation: str
) -> None:
    dsn = target15.dbs.server.conninfo()
    done = racesim(
        "explore", str(spec), "--strategy", strategy, "--out", str(tmp_path), "--dsn", dsn
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "found 1 violation(s) (one-person-per-seat)" in done.stdout
    [scenario] = tmp_path.glob("*.toml")
    saved = tmp_path / f"{spec.stem}-one-person-per-seat.spec"
    assert f"as a .spec: {saved} (isolationtester reproduces it" in done.stdout
    # The saved scenario names the spec's system, so it replays as any counterexample.
    assert f'system = "spec:{spec}"' in scenario.read_text()
    again = racesim("replay", str(scenario), "--dsn", dsn)
    assert again.returncode == 1, again.stdout + again.stderr
    assert "reproduced: one-person-per-seat" in again.stdout
    # isolationtester itself shows the second booking: the racesim_check step prints it.
    text = saved.read_text()
    order = text.rsplit("permutation ", 1)[1].split()
    assert order[-1] == "racesim_check_one_person_per_seat"
    assert order[-2].endswith(permutation)
    status, reference = target15.reference(saved)
    assert status == 0, reference.decode()
    assert b"step racesim_check_one_person_per_seat:" in reference
    assert reference.rstrip().endswith(b"seat|people\n----+------\n   1|     2\n(1 row)")
    completed, ours = target15.racesim(load(saved))
    assert completed and ours == reference


def test_the_spec_system_explores_through_the_generic_command(
    target15: Target, tmp_path: Path
) -> None:
    dsn = target15.dbs.server.conninfo()
    done = racesim(
        "explore",
        "--system",
        f"spec:{BOOKING}",
        "--store",
        "spec",
        "--strategy",
        "exhaustive",
        "--out",
        str(tmp_path),
        "--dsn",
        dsn,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "one-person-per-seat" in done.stdout
    system = resolve(f"spec:{BOOKING}")
    assert system.variant_names == ("spec",)
    assert set(system.programs) == {"alice", "bob"}


ONE_EACH = """
setup { CREATE TABLE a (n int); CREATE TABLE b (n int); INSERT INTO a VALUES (0); INSERT INTO b VALUES (0); }
teardown { DROP TABLE a; DROP TABLE b; }
session s1
step s1a { UPDATE a SET n = n + 1; }
session s2
step s2a { UPDATE b SET n = n + 1; }
"""


@pytest.mark.parametrize(
    ("invariant", "shown"),
    [
        (
            "SELECT n FROM b WHERE n > 5",
            "all 11 distinct schedules explored, none violates (spec, 2",
        ),
        ("SELECT 1 FROM a, b WHERE a.n = 1 AND b.n = 0", "found 1 violation(s) (both)"),
    ],
    ids=["reordered", "kept"],
)
def test_the_system_reorders_steps_its_invariants_cannot_see(
    target15: Target, tmp_path: Path, invariant: str, shown: str
) -> None:
    """s1's autocommit UPDATE runs as BEGIN, UPDATE, COMMIT on a, which an invariant over
    b alone cannot see: its orders against s2's steps are one schedule (20 without the
    reduction); an invariant over both tables keeps every order that shows it."""
    path, _spec = write_spec(tmp_path, ONE_EACH)
    (tmp_path / "t.spec.toml").write_text(f'[invariants]\nboth = "{invariant}"\n')
    done = racesim(
        "explore",
        "--system",
        f"spec:{path}",
        "--store",
        "spec",
        "--strategy",
        "exhaustive",
        "--out",
        str(tmp_path / "o"),
        "--dsn",
        target15.dbs.server.conninfo(),
    )
    assert shown in done.stdout, done.stdout + done.stderr


LOCKING = """
setup { CREATE TABLE acct (id int PRIMARY KEY, bal int); INSERT INTO acct VALUES (1, 100); }
teardown { DROP TABLE acct; }
session s1
setup { BEGIN; }
step r1 { SELECT bal FROM acct WHERE id = 1 FOR UPDATE; }
step c1 { COMMIT; }
session s2
step w2 { UPDATE acct SET bal = bal - 60 WHERE id = 1; }
"""


def test_a_waiting_session_is_not_stepped_while_another_can_release_it(
    target15: Target, tmp_path: Path
) -> None:
    """Stepping a session whose step waits on a lock could only wait until the run is
    stuck; explorers step the others, and the wait ends when they release it."""
    from racesim.explore.drive import Drive
    from racesim.runner import databases

    path, _spec = write_spec(tmp_path, LOCKING)
    (tmp_path / "t.spec.toml").write_text('[invariants]\nok = "SELECT 1 WHERE false"\n')
    system = resolve(f"spec:{path}")
    actors = system.configs["sessions"].actors
    with databases("dsn", target15.dbs.server.conninfo(), system) as dbs:
        name = dbs.create()
        with Drive(actors, "spec", conninfo=dbs.server.conninfo(name), system=system) as d:
            d.take("s1")
            d.take("s2")  # w2/begin: the autocommit UPDATE runs in a block of its own
            d.take("s2")
            assert d.engine.waiting("s2")
            assert d.enabled() == ["s1"]
            assert d.take("s2") is None  # not taken: it would only wait
            d.take("s1")  # the commit releases the row
            assert not d.engine.waiting("s2")
            kinds = [(e.kind, e.actor, e.call) for e in d.outcome().history.events]
        dbs.drop(name)
    assert kinds == [
        ("step", "s1", "r1"),
        ("step", "s2", "w2/begin"),
        ("wait", "s2", "w2"),
        ("step", "s1", "c1"),
        ("done", "s2", "w2"),
    ]
    assert not d.outcome().history.stuck


def test_an_invariant_that_does_not_run_names_its_file_and_line(
    target15: Target, tmp_path: Path
) -> None:
    path, _spec = write_spec(tmp_path, TWO_TABLES)
    (tmp_path / "t.spec.toml").write_text(
        '[invariants]\nfine = "SELECT 1 WHERE false"\nbad = "SELECT nope FROM a"\n'
    )
    dsn = target15.dbs.server.conninfo()
    for strategy in ("hypothesis", "exhaustive"):
        done = racesim(
            "explore", str(path), "--strategy", strategy, "--out", str(tmp_path / "o"), "--dsn", dsn
        )
        assert done.returncode == 2, done.stdout + done.stderr
        [line] = done.stderr.strip().splitlines()
        assert line.startswith(f"{tmp_path / 't.spec.toml'}:3: invariant 'bad'")
        assert 'column "nope" does not exist' in line and "fix:" in line


def test_same_seed_same_files(target15: Target, tmp_path: Path) -> None:
    dsn = target15.dbs.server.conninfo()
    saved = []
    for run in ("one", "two"):
        out = tmp_path / run
        done = racesim(
            "explore",
            str(BOOKING),
            "--strategy",
            "hypothesis",
            "--seed",
            "5",
            "--out",
            str(out),
            "--dsn",
            dsn,
        )
        assert done.returncode == 1, done.stdout + done.stderr
        saved.append({p.name: p.read_bytes() for p in sorted(out.iterdir())})
    assert saved[0] == saved[1] and len(saved[0]) == 2
