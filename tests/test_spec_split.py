"""Races inside one statement: a spec's system runs an autocommit INSERT ... WHERE NOT
EXISTS as BEGIN, the INSERT and COMMIT, so the explorer finds two sessions both
inserting; run as one step each, it never can. On real PostgreSQL."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from racesim.explore.run import ExploreOptions, explore
from racesim.provision.provide import Server
from racesim.report.text import Reporter
from racesim.runner import Prepared
from racesim.spec.explore import load_invariants
from racesim.spec.parse import load
from racesim.spec.split import after, splittable
from racesim.spec.system import from_name, spec_system

SPEC = """\
setup { CREATE TABLE seats (seat int, person text); }
teardown { DROP TABLE seats; }

session alice
step a_book { INSERT INTO seats SELECT 1, 'alice' WHERE NOT EXISTS (SELECT FROM seats WHERE seat = 1); }

session bob
step b_book { INSERT INTO seats SELECT 1, 'bob' WHERE NOT EXISTS (SELECT FROM seats WHERE seat = 1); }
"""
INVARIANTS = """\
[invariants]
one-person-per-seat = "SELECT seat, count(*) AS people FROM seats GROUP BY seat HAVING count(*) > 1"
"""


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    path = tmp_path / "autocommit.spec"
    path.write_text(SPEC)
    path.with_suffix(".spec.toml").write_text(INVARIANTS)
    return path


def test_the_default_explorer_finds_both_inserting(
    racesim_server: Server, spec: Path, tmp_path: Path
) -> None:
    system = from_name(f"spec:{spec}")
    assert system.programs["alice"].calls == {"a_book/begin", "a_book", "a_book/commit"}
    made = Prepared(racesim_server)
    try:
        text = io.StringIO()
        opts = ExploreOptions(store="spec", system=system, out=tmp_path / "out", example_db=False)
        result = explore(opts, made.for_system(system), Reporter(text))
        [key] = result.found
        assert key.startswith("one-person-per-seat"), text.getvalue()
        calls = [getattr(e, "call", "") for e in result.found[key].plan.entries]
        # both INSERTs run before either commits
        assert calls.index("b_book") < calls.index("a_book/commit") or calls.index(
            "a_book"
        ) < calls.index("b_book/commit"), calls
    finally:
        made.close()


def test_without_the_split_no_schedule_double_books(
    racesim_server: Server, spec: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RACESIM_SPLIT_COMMITS", "0")  # nor does the engine split them
    whole = spec_system(
        load(spec), load_invariants(spec.with_suffix(".spec.toml")), "whole", split=False
    )
    assert whole.programs["alice"].calls == {"a_book"}
    made = Prepared(racesim_server)
    try:
        text = io.StringIO()
        opts = ExploreOptions(
            store="spec", system=whole, strategy="exhaustive", out=tmp_path, example_db=False
        )
        result = explore(opts, made.for_system(whole), Reporter(text))
        assert result.complete and not result.found, text.getvalue()
    finally:
        made.close()


def test_what_is_split() -> None:
    assert splittable("INSERT INTO t SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM t);")
    assert splittable("  -- note\n update t set n = n + 1")
    assert not splittable("SELECT 1")
    assert not splittable("VACUUM t")
    assert not splittable("INSERT INTO t VALUES (1); INSERT INTO t VALUES (2)")
    assert after("BEGIN;", False) and after("BEGIN ISOLATION LEVEL SERIALIZABLE", False)
    assert not after("COMMIT", True) and not after("ROLLBACK", True)
    assert after("ROLLBACK TO SAVEPOINT s", True)
    assert not after("PREPARE TRANSACTION 'x'", True)
    assert not after("BEGIN; UPDATE t SET n = 1; COMMIT;", False)
