"""racesim.explore.strategies: the runs and schedules Hypothesis draws, and what
they shrink to (no server)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from counter_system import COUNTER
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st

from racesim.explore.drive import PAST, Aim, clock_moves
from racesim.explore.strategies import Schedule, configs, schedules
from racesim.model.plan import Actor
from racesim.system import Config, Followers, RunKind, Window

LEADER = RunKind("lead", "bump", prefix="lead", faults=("slow", "crash"))
FOLLOWER = RunKind("follow", "bump", prefix="f", options={"mode": "tail"}, faults=("slow",))
SENDER = RunKind("send", "bump", prefix="s", followers=Followers(FOLLOWER, most=2, link="from"))
WATCHER = RunKind("watch", "bump", prefix="w")
DRAWN = Config(kinds=(LEADER, SENDER), observers=(WATCHER,), max_runs=3)
WINDOWED = replace(COUNTER, windows=(Window(timedelta(minutes=5)),))
TWO = COUNTER.configs["two"]  # clock=False
TWO_CLOCK = replace(TWO, clock=True)
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_fixed_actors_are_drawn_as_they_are() -> None:
    fixed = COUNTER.configs["three"]
    assert find(configs(fixed), lambda actors: True) == fixed.actors


@FAST
@given(configs(DRAWN))
def test_drawn_runs_are_named_linked_and_bounded(actors: tuple[Actor, ...]) -> None:
    names = [a.name for a in actors]
    assert len(set(names)) == len(names)
    followers = [a for a in actors if "-" in a.name]
    watchers = [a for a in actors if a.name.startswith("w")]
    leaders = [a for a in actors if a not in followers and a not in watchers]
    assert 1 <= len(leaders) <= DRAWN.max_runs
    assert len(watchers) <= 1 and all(a.name == "w" for a in watchers)
    assert actors[len(actors) - len(watchers) :] == tuple(watchers)  # observers come last
    for a in followers:
        lead, _, i = a.name.rpartition("-")
        assert a.options == {"mode": "tail", "from": lead}
        assert any(x.name == lead and x.name.startswith("s") for x in leaders)
        assert actors.index(a) > names.index(lead)
        assert 1 <= int(i) <= 2
        assert a.faults <= {"slow"}
    for a in leaders:
        assert a.faults <= ({"slow", "crash"} if a.name.startswith("lead") else set())
        assert a.name.rstrip("0123456789") in ("lead", "s")


@FAST
@given(configs(DRAWN, faults=False, observers=False))
def test_faults_and_observers_can_be_left_out(actors: tuple[Actor, ...]) -> None:
    assert all(not a.faults for a in actors)
    assert not any(a.name.startswith("w") for a in actors)


def test_a_second_run_of_a_kind_is_numbered_from_two() -> None:
    actors = find(
        configs(DRAWN), lambda actors: sum(a.name.startswith("lead") for a in actors) >= 3
    )
    assert [a.name for a in actors] == ["lead", "lead2", "lead3"]


def test_runs_shrink_to_one_run_without_faults_followers_or_observers() -> None:
    [only] = find(configs(DRAWN), lambda actors: True)
    assert only.name in ("lead", "s") and not only.faults and not only.options


@FAST
@given(schedules(WINDOWED, TWO_CLOCK, max_steps=12))
def test_choices_are_actor_names_or_the_systems_clock_moves(s: Schedule) -> None:
    assert s.actors == TWO.actors
    assert len(s.choices) <= 12
    moves = set(clock_moves(WINDOWED))
    assert moves == {
        timedelta(minutes=5) + PAST,
        *(Aim(0, timedelta(microseconds=us)) for us in (-1, 0, 1)),
    }
    for c in s.choices:
        assert c in ("b1", "b2") or c in moves


@FAST
@given(
    st.one_of(
        schedules(WINDOWED, TWO_CLOCK, clock=False),
        schedules(WINDOWED, TWO),
        schedules(COUNTER, TWO_CLOCK),
    )
)
def test_no_clock_moves_when_the_clock_is_off_or_the_system_has_no_windows(s: Schedule) -> None:
    assert all(c in ("b1", "b2") for c in s.choices)


def test_a_schedule_shrinks_to_the_first_actor_and_the_plainest_move() -> None:
    s = find(
        schedules(WINDOWED, TWO_CLOCK),
        lambda s: len(s.choices) >= 2 and any(not isinstance(c, str) for c in s.choices),
    )
    assert s.choices == ("b1", timedelta(minutes=6))
    assert repr(s) == "Schedule(b1=bump, b2=bump; b1 +6m)"
    aimed = find(
        schedules(WINDOWED, TWO_CLOCK), lambda s: any(isinstance(c, Aim) for c in s.choices)
    )
    assert aimed.choices == (Aim(0, timedelta(microseconds=-1)),)  # the boundary's first offset


def test_the_repr_names_modes_faults_and_aimed_moves() -> None:
    s = Schedule(
        (
            Actor("c", "cron", {"mode": "sync"}, frozenset({"slow", "crash"})),
            Actor("u", "user"),
        ),
        ("c", Aim(0, timedelta(microseconds=-1)), "u"),
    )
    assert repr(s) == "Schedule(c=cron/sync[crash,slow], u=user; c @w0-1us u)"
