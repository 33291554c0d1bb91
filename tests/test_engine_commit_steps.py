"""Options.split_commits: a program's autocommit statement that changes data runs as
two steps, the statement in a transaction and then its COMMIT, so a schedule can put
another session's statement in the window between them (real PostgreSQL)."""

from __future__ import annotations

from typing import Any

import pytest

from racesim.engine.commit_steps import changes_data
from racesim.engine.loop import Options, execute
from racesim.model.history import Event
from racesim.model.plan import Actor, Plan, Step
from racesim.model.violation import Violation
from racesim.system import Call, Program, ProgramRun, RunContext, System, Variant

CLAIM = "INSERT INTO claims SELECT %s WHERE NOT EXISTS (SELECT 1 FROM claims)"


def claim(ctx: RunContext) -> ProgramRun:
    """Claim the one seat unless somebody has; then say how many claims there are."""
    done = yield Call("claim", kind="sql", sql=CLAIM.replace("%s", f"'{ctx.actor}'"))
    counted = yield Call("count", kind="sql", sql="SELECT count(*) AS n FROM claims")
    return f"{done}; {counted}"


def broken(ctx: RunContext) -> ProgramRun:
    """A claim that fails (no such column): the program sees the statement's error."""
    try:
        yield Call("claim", kind="sql", sql="INSERT INTO claims (nobody) VALUES ('x')")
    except Exception as exc:
        return f"raised {type(exc).__name__}"
    return "no error"


def in_transaction(ctx: RunContext) -> ProgramRun:
    """A claim inside the program's own transaction: not split."""
    yield Call("begin", kind="sql", sql="BEGIN")
    yield Call("claim", kind="sql", sql=CLAIM.replace("%s", f"'{ctx.actor}'"))
    yield Call("commit", kind="sql", sql="COMMIT")
    return "done"


class OneClaim:
    """``one-claim``: the seat is never claimed twice (the watched count of claims)."""

    def __init__(self, actors: tuple[Actor, ...]) -> None:
        self.seen = False

    def feed(self, event: Event) -> list[Violation]:
        if self.seen or event.state is None or event.state < 2:
            return []
        self.seen = True
        why = f"{event.state} claims"
        return [Violation("one-claim", event.seq, event.label, event.actor, (), why)]

    def note(self) -> str:
        return ""


def _count(conn: Any) -> int:
    row = conn.execute("SELECT count(*) FROM claims").fetchone()
    return int(row[0])


SEATS = System(
    name="seats",
    variants=(
        Variant(
            "db",
            open=lambda session: session,
            watch=_count,
            prepare=lambda conn: (
                conn.execute("CREATE TABLE IF NOT EXISTS claims (who text NOT NULL)") and None
            ),
        ),
    ),
    programs={
        "claim": Program(claim, calls=frozenset({"claim", "count"})),
        "broken": Program(broken, calls=frozenset({"claim"})),
        "in-transaction": Program(in_transaction, calls=frozenset({"begin", "claim", "commit"})),
    },
    invariants=OneClaim,
    invariant_names=("one-claim",),
)


def run(conninfo: str, actors: tuple[Actor, ...], steps: list[str], split: bool) -> Any:
    entries = tuple(Step(*s.split(":")) for s in steps)
    plan = Plan(actors=actors, entries=entries)
    return execute(plan, "db", conninfo, Options(split_commits=split), system=SEATS)


TWO = (Actor("a", "claim"), Actor("b", "claim"))


def test_a_statement_and_its_commit_are_two_steps_and_the_window_between_is_raced(
    conninfo: str,
) -> None:
    steps = ["a:claim", "b:claim", "a:claim/commit", "b:claim/commit", "a:count", "b:count"]
    out = run(conninfo, TWO, steps, split=True)
    events = out.history.events
    assert [(e.actor, e.call, e.kind) for e in events[:4]] == [
        ("a", "claim", "step"),
        ("b", "claim", "step"),
        ("a", "claim/commit", "step"),
        ("b", "claim/commit", "step"),
    ]
    assert events[0].sent == ("BEGIN", CLAIM.replace("%s", "'a'"))
    assert events[2].sent == ("COMMIT",) and events[2].result == "COMMIT"
    # Neither statement saw the other's uncommitted row: both claimed the seat.
    assert [v.invariant for v in out.checker.violations] == ["one-claim"]
    finished = {e.actor: e.finished for e in events if e.finished}
    assert finished == {"a": "INSERT 0 1; SELECT 1: n=2", "b": "INSERT 0 1; SELECT 1: n=2"}


def test_without_split_commits_each_statement_commits_in_its_step(conninfo: str) -> None:
    out = run(conninfo, TWO, ["a:claim", "b:claim", "a:count", "b:count"], split=False)
    assert not out.checker.violations
    finished = {e.actor: e.finished for e in out.history.events if e.finished}
    assert finished == {"a": "INSERT 0 1; SELECT 1: n=1", "b": "INSERT 0 0; SELECT 1: n=1"}


def test_the_statements_error_reaches_the_program_after_the_commit_step(conninfo: str) -> None:
    out = run(conninfo, (Actor("a", "broken"),), ["a:claim", "a:claim/commit"], split=True)
    failed, commit = out.history.events
    assert failed.sqlstate == "42703" and failed.finished is None  # undefined_column
    assert commit.result == "ROLLBACK" and commit.finished == "raised UndefinedColumn"


def test_a_statement_inside_the_programs_own_transaction_is_not_split(conninfo: str) -> None:
    actors = (Actor("a", "in-transaction"),)
    out = run(conninfo, actors, ["a:begin", "a:claim", "a:commit"], split=True)
    assert [e.call for e in out.history.events] == ["begin", "claim", "commit"]
    assert out.history.events[1].sent == (CLAIM.replace("%s", "'a'"),)


@pytest.mark.parametrize(
    ("sql", "split"),
    [
        ("INSERT INTO t VALUES (1)", True),
        ("  -- a comment\n update t set v = 1", True),
        ("DELETE FROM t", True),
        ("WITH x AS (DELETE FROM t RETURNING *) SELECT count(*) FROM x", True),
        ("SELECT 1", False),
        ("SELECT pg_advisory_lock(1)", False),
        ("INSERT INTO t VALUES (1); INSERT INTO t VALUES (2)", False),
        ("BEGIN", False),
        ("VACUUM t", False),
        ("not sql at all", False),
    ],
)
def test_only_one_data_changing_statement_is_split(sql: str, split: bool) -> None:
    assert changes_data(sql) is split


def test_runs_split_commits_by_default_unless_told_not_to(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RACESIM_SPLIT_COMMITS", raising=False)
    assert Options().split_commits is True
    monkeypatch.setenv("RACESIM_SPLIT_COMMITS", "0")
    assert Options().split_commits is False


def test_a_plans_split_commits_decides_over_the_callers(conninfo: str) -> None:
    steps = (Step("a", "claim"), Step("b", "claim"), Step("a", "count"), Step("b", "count"))
    plan = Plan(actors=TWO, entries=steps, split_commits=False)
    out = execute(plan, "db", conninfo, Options(split_commits=True), system=SEATS)
    assert [e.call for e in out.history.events[:2]] == ["claim", "claim"]
    assert not out.checker.violations  # each claim committed in its own step
