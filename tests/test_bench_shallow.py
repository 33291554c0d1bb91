"""``racesim bench explore``'s shallow races: racesim's time to find against a plain
Hypothesis test over the bare statements, and where racesim's time goes."""

from __future__ import annotations

from racesim.bench import explore as bench_explore
from racesim.bench.breakdown import PARTS, Breakdown
from racesim.bench.plain import bare_double_claim
from racesim.engine import loop
from racesim.explore import run as explore_run
from racesim.provision.databases import Databases


def test_the_breakdown_times_each_part_and_puts_the_methods_back() -> None:
    originals = [getattr(owner, attribute) for _, owner, attribute in PARTS]
    with Breakdown() as timing:
        assert loop.Engine._step is not originals[3]
    assert [getattr(owner, attribute) for _, owner, attribute in PARTS] == originals
    assert explore_run.shrink is originals[-1]
    assert set(timing.before(1.0)) == {what for what, _, _ in PARTS}


def test_the_double_claim_against_plain_hypothesis(databases: Databases) -> None:
    lines = bench_explore._double_claim(databases, 1)
    text = "\n".join(lines)
    assert "found in" in lines[0] and "(1/1 seeds)" in lines[0], text
    # the plain test finds it too, shrunk to the four calls it takes
    assert "(1/1 seeds), shrunk to 4 calls" in lines[1], text
    assert "racesim / plain Hypothesis time to find:" in lines[2] and "target <= 2x" in lines[2]
    parts = [line.split()[0] for line in lines[4:-1]]
    assert "steps" in parts and "the" in parts, text  # the SQL under test, and the rest
    assert "after the finding: shrinking" in lines[-1]


def test_the_bare_double_claim_is_found_on_each_seed(databases: Databases) -> None:
    queue = bench_explore.resolve("jobqueue")
    made = bench_explore.Prepared(databases.server)
    try:
        found, calls, setups = bare_double_claim(made.for_system(queue), 2)
    finally:
        made.close()
    assert len(found) == 2 and calls == [4, 4]
    assert all(0 < s < f for s, f in zip(setups, found, strict=True))
