"""A race that lives between a statement's work and its commit, found by the default
``racesim explore`` of a program's autocommit ``INSERT ... WHERE NOT EXISTS``, saved,
and replayed exactly; the fixed store (a unique constraint and ``ON CONFLICT DO
NOTHING``) holds; scenario files' ``NAME/commit`` steps and ``split_commits`` key
are checked line by line (real PostgreSQL)."""

from __future__ import annotations

import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from racesim.cli.main import main
from racesim.errors import EXIT_FOUND, EXIT_INPUT, EXIT_OK
from racesim.provision.provide import Server

SEATS = '''
"""seats: a program claims seat 1 for its actor unless somebody holds it."""

from typing import Any

from racesim.model.history import Event
from racesim.model.plan import Actor
from racesim.model.violation import Violation
from racesim.system import (
    Call, Config, Program, ProgramRun, RunContext, System, Variant, sql_reset, watch_sql,
)

CLAIM = {
    # No constraint: two statements that both run before either commits both see
    # no holder, and both insert.
    "racy": "INSERT INTO holds (seat, who) SELECT 1, '{who}'"
    " WHERE NOT EXISTS (SELECT 1 FROM holds WHERE seat = 1)",
    # The constraint decides: the second insert waits for the first and inserts nothing.
    "fixed": "INSERT INTO holds (seat, who) VALUES (1, '{who}') ON CONFLICT DO NOTHING",
}
TABLE = {"racy": "seat int NOT NULL", "fixed": "seat int NOT NULL UNIQUE"}


def claim(ctx: RunContext) -> ProgramRun:
    done = yield Call("claim", kind="sql", sql=CLAIM[ctx.variant].format(who=ctx.actor))
    return str(done)


class OneHolder:
    """``one-holder``: seat 1 is never held twice."""

    def __init__(self, actors: tuple[Actor, ...]) -> None:
        self.seen = False

    def feed(self, event: Event) -> list[Violation]:
        if self.seen or event.state is None or event.state < 2:
            return []
        self.seen = True
        why = f"seat 1 held {event.state} times"
        return [Violation("one-holder", event.seq, event.label, event.actor, (), why)]

    def note(self) -> str:
        return ""


def _count(row: Any) -> int:
    return int(row[0])


def _variant(name: str) -> Variant:
    return Variant(
        name,
        open=lambda session: session,
        prepare=lambda conn: conn.execute(
            f"DROP TABLE IF EXISTS holds; CREATE TABLE holds ({TABLE[name]}, who text)"
        ) and None,
        reset=sql_reset("TRUNCATE holds"),
        watch=watch_sql("SELECT count(*) FROM holds WHERE seat = 1", _count),
    )


TWO = Config("two claims", actors=(Actor("a", "claim", {}), Actor("b", "claim", {})), clock=False)
SEATS = System(
    name="seats",
    variants=(_variant("racy"), _variant("fixed")),
    programs={"claim": Program(claim, calls=frozenset({"claim"}))},
    invariants=OneHolder,
    invariant_names=("one-holder",),
    configs={"two": TWO},
    defaults={s: "two" for s in ("portfolio", "exhaustive", "pct", "hypothesis")},
)
'''


@pytest.fixture
def seats(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder holding seats.py, the current folder (``--system seats:SEATS``)."""
    (tmp_path / "seats.py").write_text(SEATS)
    sys.modules.pop("seats", None)  # another test's seats.py, imported earlier in this process
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RACESIM_SPLIT_COMMITS", raising=False)  # the CLI may set it
    yield tmp_path
    sys.modules.pop("seats", None)


def _pg(server: Server) -> list[str]:
    return ["--system", "seats:SEATS", "--pg", "dsn", "--dsn", server.conninfo("postgres")]


def test_the_default_explore_finds_the_race_between_a_statement_and_its_commit_and_replays_it(
    racesim_server: Server, seats: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["explore", "--store", "racy", "--max-examples", "60", "--out", "out"]
    status = main([*argv, *_pg(racesim_server)])
    out, err = capsys.readouterr()
    assert status == EXIT_FOUND, out + err
    [saved] = (seats / "out").glob("*.toml")
    text = saved.read_text()
    steps = [entry.split(" ", 1)[1] for entry in tomllib.loads(text)["schedule"]]
    # Both statements run before the first commit: neither saw the other's row.
    assert steps[:3] in (
        ["a: claim", "b: claim", "a: claim/commit"],
        ["a: claim", "b: claim", "b: claim/commit"],
        ["b: claim", "a: claim", "a: claim/commit"],
        ["b: claim", "a: claim", "b: claim/commit"],
    ), text
    assert "split_commits" not in text  # split is what a file without the key does
    assert 'racy = { breaks = "one-holder"' in text

    status = main(["replay", str(saved), *_pg(racesim_server)])
    replayed = capsys.readouterr().out
    assert status == EXIT_FOUND, replayed
    assert "reproduced: one-holder at " in replayed
    assert replayed.count("claim/commit") >= 2, replayed

    # A file that needs split commits is not run without them.
    status = main(["replay", str(saved), "--no-split-commits", *_pg(racesim_server)])
    err = capsys.readouterr().err
    assert status == EXIT_INPUT
    assert f"{saved}:" in err and "drop --no-split-commits" in err


def test_the_fixed_store_holds_in_every_schedule(
    racesim_server: Server, seats: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["explore", "--store", "fixed", "--strategy", "exhaustive", "--out", "out"]
    status = main([*argv, *_pg(racesim_server)])
    out = capsys.readouterr().out
    assert status == EXIT_OK, out
    assert not list((seats / "out").glob("*.toml"))


def test_without_split_commits_each_statement_commits_in_its_step_and_nothing_is_found(
    racesim_server: Server, seats: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["explore", "--store", "racy", "--strategy", "exhaustive", "--no-split-commits"]
    status = main([*argv, "--out", "out", *_pg(racesim_server)])
    assert status == EXIT_OK, capsys.readouterr().out
    assert not list((seats / "out").glob("*.toml"))


SCENARIO = """system = "seats:SEATS"
name = "two claims"
stores = ["racy"]
{key}
schedule = [
  "T+0 a: claim",
  "T+1 {second}",
  "T+2 a: claim/commit",
  "T+3 b: claim/commit",
]

[actors]
a = {{ program = "claim" }}
b = {{ program = "claim" }}

[expect]
racy = {{ breaks = "one-holder", at = "T+3" }}
"""


def test_a_hand_written_scenario_with_commit_steps_runs_split(
    racesim_server: Server, seats: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (seats / "two.toml").write_text(SCENARIO.format(key="", second="b: claim"))
    status = main(["run", "two.toml", *_pg(racesim_server)])
    out = capsys.readouterr().out
    assert status == EXIT_OK, out
    assert "1 matched, 0 did not" in out


@pytest.mark.parametrize(
    ("key", "second", "line", "message"),
    [
        ("", "b: claim/commit", 7, "must be b's next step after its claim step"),
        ("split_commits = false", "b: claim", 8, "sets split_commits = false"),
        ('split_commits = "yes"', "b: claim", 4, "split_commits must be true or false"),
        ("", "b: claims/commit", 7, "never calls 'claims/commit'"),
    ],
)
def test_commit_steps_and_the_key_are_checked_line_by_line(
    seats: Path,
    capsys: pytest.CaptureFixture[str],
    key: str,
    second: str,
    line: int,
    message: str,
) -> None:
    (seats / "bad.toml").write_text(SCENARIO.format(key=key, second=second))
    assert main(["run", "bad.toml", "--system", "seats:SEATS"]) == EXIT_INPUT
    err = capsys.readouterr().err
    assert f"bad.toml:{line}:" in err and message in err, err


def test_a_counterexample_of_a_run_without_split_commits_says_so_and_reads_back(
    seats: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from racesim.formats.scenario import parse
    from racesim.formats.writer import scenario_text
    from racesim.model.plan import Actor, Plan, Step
    from racesim.system import resolve

    system = resolve("seats:SEATS")  # imported from the current folder
    actors = (Actor("a", "claim"), Actor("b", "claim"))
    plan = Plan(actors, (Step("a", "claim", "T+0"), Step("b", "claim", "T+1")))
    split = scenario_text(plan, "racy", "", "", name="n", system="seats:SEATS")
    assert "split_commits" not in split
    assert parse(split, "x.toml", system).plan.split_commits is None  # the command decides
    monkeypatch.setenv("RACESIM_SPLIT_COMMITS", "0")
    whole = scenario_text(plan, "racy", "", "", name="n", system="seats:SEATS")
    assert "\nsplit_commits = false\n" in whole
    assert parse(whole, "x.toml", system).plan.split_commits is False


def test_a_file_written_before_split_commits_is_told_how_to_run_as_it_was(
    racesim_server: Server, seats: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A hand-written schedule that names each statement once, as files did before
    # statements were split: the second step is the commit of a's claim, not b's claim.
    (seats / "old.toml").write_text(
        SCENARIO.format(key="", second="b: claim")
        .replace('  "T+2 a: claim/commit",\n  "T+3 b: claim/commit",\n', "")
        .replace('at = "T+3"', 'at = "T+1"')
        .replace('"T+1 b: claim"', '"T+1 a: claim"')
    )
    status = main(["run", "old.toml", *_pg(racesim_server)])
    err = capsys.readouterr().err
    assert status == EXIT_INPUT, err
    assert "write 'a: claim/commit'" in err
    assert "or set split_commits = false" in err
