"""The System seam: the harness names nothing of the reference system, and exploration
draws its runs, configurations and clock moves from the system it is given."""

from __future__ import annotations

import dataclasses
import io
import re
from datetime import timedelta
from pathlib import Path

from racesim.explore.drive import PAST, Aim, Drive, clock_moves
from racesim.explore.run import ExploreOptions, explore
from racesim.model.plan import Actor, ClockMove, Step
from racesim.provision.databases import Databases
from racesim.report.text import Reporter
from racesim.store import _sql
from racesim.store.interface import STALE_AFTER, MarkResult, check_token, seeded_tokens
from racesim.store.invariants import Marker
from racesim.store.system import SNAPSHOT, SYSTEM, _marker
from racesim.store.token import TokenStore
from racesim.system import MICROSECOND, Config, Followers, RunKind, Session, Variant, watch_sql

HARNESS = Path(__file__).resolve().parents[1] / "harness"

REFERENCE_NAMES = (
    # its table and columns
    "recommendations_state",
    "last_collection_started_at",
    "last_collection_owner_id",
    "last_collection_error",
    "last_collected_at",
    "owner_id",
    # its calls
    "mark",
    "get_freshness",
    "set_collection_error",
    "upsert_recommendations",
    "try_task_lock",
    "release_task_lock",
    # its values and tokens
    "MarkResult",
    "Freshness",
    "Marker",
    "MarkerStore",
    "seeded_tokens",
    "open_store",
    # its deliveries
    "invoked_by",
    "deliveries",
    "delivery",
)
"""Words that only the reference system (store/) may use."""


def test_harness_names_nothing_of_the_reference_system() -> None:
    word = re.compile(r"\b(" + "|".join(REFERENCE_NAMES) + r")\b")
    hits = [
        f"{path.relative_to(HARNESS.parent)}:{n}: {line.strip()}"
        for path in sorted(HARNESS.rglob("*"))
        if path.is_file() and path.suffix in (".py", ".md", ".toml", ".js", ".css", ".html")
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if word.search(line)
    ]
    assert not hits, "\n".join(hits)


def test_harness_imports_the_reference_system_nowhere() -> None:
    imports = re.compile(r"^\s*(from|import)\s+racesim\.store\b")
    hits = [
        f"{path}:{n}"
        for path in sorted(HARNESS.rglob("*.py"))
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if imports.match(line) and "bench" not in path.parts
    ]
    assert not hits, hits


def test_clock_moves_come_from_the_windows() -> None:
    assert clock_moves(SYSTEM) == (
        STALE_AFTER + PAST,
        Aim(0, -MICROSECOND),
        Aim(0, timedelta(0)),
        Aim(0, MICROSECOND),
    )


def _after_aimed_move(offset: timedelta) -> tuple[MarkResult, timedelta]:
    """cron marks, the clock is aimed at the window's boundary (+ offset), cron2 marks."""
    actors = (Actor("cron", "cron"), Actor("cron2", "cron"))
    with Drive(actors, "model", system=SYSTEM) as d:
        d.take("cron")
        d.take(Aim(0, offset))
        d.take("cron2")
        events = d.outcome().history.events
    first, second = events[0], events[-1]
    assert isinstance(first.state, Marker) and first.state.started_at is not None
    assert second.vtime is not None
    assert isinstance(d.plan().entries[1], ClockMove)
    return second.result, second.vtime - first.state.started_at


def test_an_aimed_move_lands_the_next_step_on_the_boundary() -> None:
    result, elapsed = _after_aimed_move(timedelta(0))
    assert elapsed == STALE_AFTER and not result.ok  # "older than 5 minutes" is strict
    result, elapsed = _after_aimed_move(MICROSECOND)
    assert elapsed == STALE_AFTER + MICROSECOND and result.ok  # the takeover
    result, elapsed = _after_aimed_move(-MICROSECOND)
    assert elapsed == STALE_AFTER - MICROSECOND and not result.ok


def test_a_drawn_config_has_a_roster_for_fixed_strategies() -> None:
    bg = RunKind("bg", "background", "")
    config = Config(
        kinds=(
            RunKind("c", "cron", "cron"),
            RunKind("a", "refresh", "user", {"mode": "async"}, (), Followers(bg, 2, "invoked_by")),
        ),
        observers=(RunKind("p", "poll", "page"),),
    )
    assert [(a.name, a.program, dict(a.options)) for a in config.roster()] == [
        ("cron", "cron", {}),
        ("user", "refresh", {"mode": "async"}),
        ("user-1", "background", {"invoked_by": "user"}),
        ("user-2", "background", {"invoked_by": "user"}),
        ("page", "poll", {}),
    ]


class _InclusiveStore(TokenStore):
    """The owner-token store with its window compared with <= instead of <."""

    def mark(self) -> MarkResult:
        token = check_token(self.tokens())
        guard = _sql.MARK_GUARD.replace(" < NOW()", " <= NOW()")
        assert guard != _sql.MARK_GUARD
        cur = self.conn.execute(
            "UPDATE recommendations_state"
            " SET last_collection_started_at = NOW(), last_collection_owner_id = %s " + guard,
            (token,),
        )
        return MarkResult(ok=True, token=token) if cur.rowcount == 1 else MarkResult(False)


def _inclusive(s: Session) -> _InclusiveStore:
    assert s.conn is not None
    return _InclusiveStore(s.conn, seeded_tokens(s.seed))


INCLUSIVE = dataclasses.replace(
    SYSTEM,
    variants=(
        *SYSTEM.variants,
        dataclasses.replace(
            SYSTEM.variant("token"),
            name="inclusive",
            open=_inclusive,
            watch=watch_sql(SNAPSHOT, _marker),
        ),
    ),
)


def test_a_window_compared_with_le_is_caught_at_its_boundary(
    racesim_databases: Databases, tmp_path: Path
) -> None:
    assert isinstance(INCLUSIVE.variant("inclusive"), Variant)
    result = explore(
        ExploreOptions(
            store="inclusive",
            config="cron+cron",
            seed=1,
            max_examples=400,
            out=tmp_path,
            example_db=False,
            system=INCLUSIVE,
        ),
        racesim_databases,
        Reporter(io.StringIO()),
    )
    # At exactly 5 minutes the store lets a second mark take over a marker that is
    # not yet stale: a foreign replace, and a result the model disagrees with.
    assert set(result.found) == {
        "no-foreign-clear/replaced-by-mark",
        "model-agreement/mark",
    }, result.summary
    driven = result.found["no-foreign-clear/replaced-by-mark"]
    assert {v.key for v in driven.violations} >= {"model-agreement/mark"}
    moves = [e for e in driven.plan.entries if isinstance(e, ClockMove)]
    assert moves and all(m.delta < STALE_AFTER for m in moves)  # an aimed move, not +6m


def test_single_delivery_hunts_past_the_known_duplicate_delivery(
    racesim_databases: Databases, tmp_path: Path
) -> None:
    out = io.StringIO()
    result = explore(
        ExploreOptions(
            store="token",
            config="single-delivery",
            seed=3,
            max_examples=150,
            out=tmp_path,
            example_db=False,
        ),
        racesim_databases,
        Reporter(out),
    )
    assert result.schedules == 150 and not result.found, result.summary
    assert "budget spent after 150 schedules: none found" in out.getvalue()


def test_every_strategy_takes_a_config(racesim_databases: Databases, tmp_path: Path) -> None:
    for strategy in ("hypothesis", "exhaustive", "pct"):
        result = explore(
            ExploreOptions(
                store="legacy",
                strategy=strategy,
                config="cron+user",
                max_examples=200,
                out=tmp_path / strategy,
                example_db=False,
            ),
            racesim_databases,
            Reporter(io.StringIO()),
        )
        assert "no-foreign-clear/cleared-by-clear" in result.found, (strategy, result.summary)
        plan = result.found["no-foreign-clear/cleared-by-clear"].plan
        assert {a.name for a in plan.actors} <= {"cron", "user"}
        assert all(isinstance(e, Step | ClockMove) for e in plan.entries)
