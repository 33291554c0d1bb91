"""The footprint of a split statement's commit step: it writes what its statement read
or wrote, so the exhaustive search reorders it with steps on other tables (fewer
schedules) and never with steps touching the statement's tables, or with what the
invariants see (the race between a claim and its commit is still found; real
PostgreSQL)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from racesim.cli.main import main
from racesim.engine.commit_steps import commit_step
from racesim.errors import EXIT_FOUND, EXIT_OK
from racesim.explore.steps import EVERYTHING, access, independent
from racesim.provision.provide import Server
from racesim.system import Call, resolve

LOGS = '''"""logs: two programs that each add a row to a table of their own, and claims of seat 1."""

from typing import Any

from racesim.model.history import Event
from racesim.model.plan import Actor
from racesim.model.violation import Violation
from racesim.system import (
    Call, Config, Footprint, Program, ProgramRun, RunContext, System, Variant, sql_reset,
    watch_sql,
)

CLAIM = "INSERT INTO holds SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM holds)"


def claim(ctx: RunContext) -> ProgramRun:
    yield Call("claim", kind="sql", sql=CLAIM)
    yield Call("done", kind="sql", sql="SELECT 1")
    return "claimed"


def logger(table: str) -> Program:
    def log(ctx: RunContext) -> ProgramRun:
        yield Call(table, kind="sql", sql=f"INSERT INTO {table} VALUES (1)")
        yield Call("done", kind="sql", sql="SELECT 1")
        return "logged"

    return Program(log, calls=frozenset({table, "done"}))


def manual(ctx: RunContext) -> ProgramRun:
    """Its own transaction, ended by a call of its own named like a commit step."""
    yield Call("begin", kind="sql", sql="BEGIN")
    yield Call("step", kind="sql", sql="INSERT INTO log2 VALUES (1)")
    yield Call("step/commit", kind="sql", sql="COMMIT")
    return "done"


class OneHolder:
    def __init__(self, actors: tuple[Actor, ...]) -> None:
        self.seen = False

    def feed(self, event: Event) -> list[Violation]:
        if self.seen or event.state is None or event.state < 2:
            return []
        self.seen = True
        return [Violation("one-holder", event.seq, event.label, event.actor, (), "twice")]

    def note(self) -> str:
        return ""


TABLES = "CREATE TABLE IF NOT EXISTS holds (seat int); CREATE TABLE IF NOT EXISTS log1 (n int);" \
    " CREATE TABLE IF NOT EXISTS log2 (n int)"
LOGS = System(
    name="logs",
    prepare=lambda conn: conn.execute(TABLES) and None,
    variants=(
        Variant(
            "db",
            open=lambda session: session,
            reset=sql_reset("TRUNCATE holds, log1, log2"),
            watch=watch_sql("SELECT count(*) FROM holds", lambda row: int(row[0])),
        ),
    ),
    programs={
        "claim": Program(claim, calls=frozenset({"claim", "done"})),
        "log1": logger("log1"),
        "log2": logger("log2"),
        "manual": Program(manual, calls=frozenset({"begin", "step", "step/commit"})),
    },
    invariants=OneHolder,
    invariant_names=("one-holder",),
    invariant_reads=frozenset({"holds"}),
    footprints={
        "claim": Footprint(reads=frozenset({"holds"}), writes=frozenset({"holds"})),
        "log1": Footprint(writes=frozenset({"log1"})),
        "log2": Footprint(writes=frozenset({"log2"})),
        "step": Footprint(writes=frozenset({"log2"})),
        "done": Footprint(),
    },
    configs={
        "logs": Config("two logs", actors=(Actor("l1", "log1", {}), Actor("l2", "log2", {})), clock=False),
        "claims": Config(
            "two claims and a log",
            actors=(Actor("a", "claim", {}), Actor("b", "claim", {}), Actor("l", "log1", {})),
            clock=False,
        ),
    },
)
'''


@pytest.fixture
def logs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder holding logs.py, the current folder (``--system logs:LOGS``)."""
    (tmp_path / "logs.py").write_text(LOGS)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("RACESIM_SPLIT_COMMITS", raising=False)
    yield tmp_path
    sys.modules.pop("logs", None)


def _explore(server: Server, config: str) -> list[str]:
    return [
        "explore",
        "--system",
        "logs:LOGS",
        "--store",
        "db",
        "--strategy",
        "exhaustive",
        "--config",
        config,
        "--out",
        "out",
        "--pg",
        "dsn",
        "--dsn",
        server.conninfo("postgres"),
    ]


def test_a_commit_step_writes_what_its_statement_touched(logs: Path) -> None:
    system = resolve("logs:LOGS")
    made = commit_step(Call("log1", kind="sql", sql="INSERT INTO log1 VALUES (1)"))
    commit = access("l1", "log1/commit", False, system, made)
    assert (commit.reads, commit.writes, commit.seen) == (frozenset(), {"log1"}, False)
    other = access("l2", "log2/commit", False, system, commit_step(Call("log2", kind="sql")))
    assert independent(commit, other)
    assert not independent(commit, access("l2", "log1", False, system, Call("log1")))
    claimed = access("a", "claim/commit", False, system, commit_step(Call("claim", kind="sql")))
    assert claimed.writes == {"holds"} and claimed.seen  # the invariants read holds
    # Without the statement's footprint, or for a program's own call of that name (or
    # any other SQL than the engine's COMMIT), it touches everything.
    for call, sql in (("step/commit", "COMMIT"), ("log1/commit", "COMMIT; SELECT 1")):
        made = Call(call, kind="sql", sql=sql)
        assert access("l1", call, False, system, made).writes == {EVERYTHING}


def test_the_search_reorders_commit_steps_of_other_tables_and_still_finds_the_race(
    racesim_server: Server, logs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(_explore(racesim_server, "logs")) == EXIT_OK
    out = capsys.readouterr().out
    # 14 schedules (1 branch skipped) when commit steps conflicted with everything
    assert "all 6 distinct schedules explored, none violates (db, 4 redundant branches" in out
    assert main(_explore(racesim_server, "claims")) == EXIT_FOUND
    assert "found 1 violation(s) (one-holder)" in capsys.readouterr().out
