"""racesim.explore.shrink: the greedy last pass over an executed counterexample,
on the counter system's in-memory store (no server)."""

from __future__ import annotations

import time
from dataclasses import replace

from counter_system import COUNTER

from racesim.explore.drive import Choice, Driven, drive
from racesim.explore.shrink import shrink, size
from racesim.model.plan import Actor, Step

THREE = COUNTER.configs["three"].actors
# b3 bumps first and alone; then b1 and b2 both read before either writes
LONG = ["b3", "b3", "b1", "b2", "b1", "b2"]


class Recorder:
    """A rerun that drives the counter in memory and remembers what it was asked."""

    def __init__(self, system: object = COUNTER) -> None:
        self.system = system
        self.asked: list[tuple[tuple[str, ...], list[Choice]]] = []

    def __call__(self, actors: tuple[Actor, ...], choices: list[Choice]) -> Driven:
        self.asked.append((tuple(a.name for a in actors), list(choices)))
        return drive(actors, choices, "memory", system=COUNTER)


def _steps(driven: Driven) -> list[tuple[str, str]]:
    return [(e.actor, e.call) for e in driven.plan.entries if isinstance(e, Step)]


def test_size_orders_by_entries_then_runs_then_switches() -> None:
    long = drive(THREE, LONG, "memory", system=COUNTER)
    short = drive(THREE[:2], ["b1", "b2", "b1", "b2"], "memory", system=COUNTER)
    same_steps_more_runs = drive(THREE, ["b1", "b2", "b1", "b2"], "memory", system=COUNTER)
    fewer_switches = drive(THREE[:2], ["b1", "b1", "b2", "b2"], "memory", system=COUNTER)
    assert size(short) < size(long)
    assert size(short) < size(same_steps_more_runs)  # 4 entries each, 2 runs against 3
    assert size(fewer_switches) < size(short)  # one switch against three
    assert size(long)[:4] == (6, 3, 0, 4)  # b3>b1, b1>b2, b2>b1, b1>b2


def test_an_irrelevant_run_and_its_steps_are_dropped() -> None:
    driven = drive(THREE, LONG, "memory", system=COUNTER)
    assert [v.invariant for v in driven.first] == ["no-lost-update"]
    small = shrink(driven, Recorder(), system=COUNTER)
    assert [a.name for a in small.plan.actors] == ["b1", "b2"]
    assert _steps(small) == [("b1", "read"), ("b2", "read"), ("b1", "write"), ("b2", "write")]
    assert [v.key for v in small.first] == ["no-lost-update"]
    assert size(small) < size(driven)


def test_the_result_still_breaks_the_same_invariant_and_is_a_local_minimum() -> None:
    driven = drive(THREE, LONG, "memory", system=COUNTER)
    small = shrink(driven, Recorder(), system=COUNTER)
    again = Recorder()
    assert shrink(small, again, system=COUNTER) == small  # nothing smaller still breaks
    assert again.asked  # it did try


def test_a_counterexample_without_violations_is_returned_untouched() -> None:
    holds = drive(THREE[:2], ["b1", "b1", "b2", "b2"], "memory", system=COUNTER)
    rerun = Recorder()
    assert shrink(holds, rerun, system=COUNTER) is holds
    assert rerun.asked == []


def test_max_runs_bounds_the_reruns() -> None:
    driven = drive(THREE, LONG, "memory", system=COUNTER)
    rerun = Recorder()
    shrink(driven, rerun, max_runs=3, system=COUNTER)
    assert len(rerun.asked) == 3


def test_a_deadline_already_passed_keeps_the_original() -> None:
    driven = drive(THREE, LONG, "memory", system=COUNTER)
    rerun = Recorder()
    assert shrink(driven, rerun, system=COUNTER, deadline=time.monotonic() - 1) is driven
    assert rerun.asked == []


def test_dropping_a_run_drops_the_runs_it_triggers() -> None:
    # b3 is started by b1's send (trigger): no candidate keeps b3 once b1 is gone
    triggered = replace(COUNTER, trigger=lambda a: "b1" if a.name == "b3" else None)
    driven = drive(THREE, LONG, "memory", system=COUNTER)
    rerun = Recorder()
    shrink(driven, rerun, system=triggered)
    assert ("b2",) in [names for names, _ in rerun.asked]  # b1 dropped, b3 with it
    for names, choices in rerun.asked:
        assert not ("b3" in names and "b1" not in names), names
        assert set(choices) <= set(names)


def test_a_simpler_run_from_the_system_is_tried_in_place() -> None:
    # (b3 goes first, as a dropped run; then b1 is offered its simpler stand-in)
    simpler = Actor("b1", "bump", {"plain": True})
    offering = replace(COUNTER, simplify=lambda a, actors: (simpler,) if a.name == "b1" else ())
    driven = drive(THREE, LONG, "memory", system=COUNTER)
    rerun = Recorder()
    tried: list[tuple[Actor, ...]] = []

    def watching(actors: tuple[Actor, ...], choices: list[Choice]) -> Driven:
        tried.append(actors)
        return rerun(actors, choices)

    shrink(driven, watching, system=offering)
    assert any(simpler in actors for actors in tried)


def test_a_fault_is_dropped_when_the_violation_stays() -> None:
    with_fault = (replace(THREE[0], faults=frozenset({"slow"})), *THREE[1:])
    driven = drive(with_fault, LONG, "memory", system=COUNTER)
    tried: list[tuple[Actor, ...]] = []
    rerun = Recorder()

    def watching(actors: tuple[Actor, ...], choices: list[Choice]) -> Driven:
        tried.append(actors)
        return rerun(actors, choices)

    small = shrink(driven, watching, system=COUNTER)
    assert any(a.name == "b1" and not a.faults for actors in tried for a in actors)
    assert all(not a.faults for a in small.plan.actors)
