"""Merging what the workers of a spread exploration found: the smallest
counterexample per invariant and cause is saved under ``--out`` (with the page and
``.spec`` beside it), flaky findings are kept apart, and the summary says what was
searched, by how many workers, and what was not.

Example::

    status = merge(opts, Outcome(todo, done, unsearched={}, workers=2), reporter)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from racesim.errors import EXIT_FLAKY, EXIT_FOUND, EXIT_HARNESS, EXIT_INPUT, EXIT_OK, InputError
from racesim.explore.parts import SPLIT, Done, Part
from racesim.formats.names import escaped
from racesim.formats.writer import save
from racesim.report.text import Reporter

if TYPE_CHECKING:
    from racesim.explore.options import ExploreOptions

__all__ = ["REACHED", "SPENT", "Outcome", "merge"]

SPENT = "budget spent before it started"
"""Why a part was not started when the budget ran out (no lost work)."""
REACHED = "--max-examples reached before it started"
"""Why a part was not started once the search had run its --max-examples."""
_UNSTARTED = (SPENT, REACHED)


@dataclass
class Outcome:
    """What the workers did with a spread search's parts."""

    todo: list[Part]
    """Every part made: those cut up front, then the split's subtrees."""
    done: list[Done]
    unsearched: dict[int, str]
    """Parts not finished (by index), and why."""
    lost: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    workers: int = 0
    """Workers the search was given."""


def merge(opts: ExploreOptions, outcome: Outcome, reporter: Reporter) -> int:
    """Save the smallest counterexample per key, print them and the summary; return
    the exit status (as ``racesim explore``'s)."""
    todo, unsearched = outcome.todo, outcome.unsearched
    done = sorted(outcome.done, key=lambda d: d.part.index)
    best: dict[str, tuple[list[int], int, dict[str, Any]]] = {}
    flaky: dict[str, dict[str, Any]] = {}
    for d in done:
        for f in d.answer["found"]:
            rank = (f["size"], d.part.index)
            if f["key"] not in best or rank < best[f["key"]][:2]:
                best[f["key"]] = (f["size"], d.part.index, f)
        for f in d.answer["flaky"]:
            flaky.setdefault(f["key"], f)
    for key in best:
        flaky.pop(key, None)
    saved: dict[str, Path] = {}
    for key in sorted(best):
        found = best[key][2]
        paths = _save(opts.out, found["files"])
        saved[key] = next((p for p in paths if p.name == found["name"]), opts.out / found["name"])
        reporter.line(found["timeline"].replace(found["path"], str(saved[key])).rstrip("\n"))
        for path in paths:
            if path.suffix in _BESIDE:
                reporter.line(f"   {_BESIDE[path.suffix]}: {escaped(str(path))}")
    for key in sorted(flaky):
        _save(opts.out, flaky[key]["files"])
        reporter.line(flaky[key]["line"])
    schedules = sum(d.answer["schedules"] for d in done)
    workers = len({d.worker for d in done})
    where = f"{len(todo)} parts on {workers} worker(s)"
    missed = {i: why for i, why in unsearched.items() if why not in _UNSTARTED}
    lost = ""
    if outcome.lost:
        lost = f"; {len(outcome.lost)} worker(s) lost" + (
            "" if missed else ", their parts run again"
        )
    gap = ""
    if missed:
        names = ", ".join(f"{todo[i].label} ({why})" for i, why in sorted(missed.items()))
        gap = f"; search incomplete: NOT searched: {names}"
    for why in _UNSTARTED:
        count = sum(w == why for w in unsearched.values())
        if count:
            gap += f"; {count} part(s) not started: {why.removesuffix(' before it started')}"
    if best:
        reporter.line(
            f"found {len(best)} violation(s) ({', '.join(sorted(best))}) after {schedules}"
            f" schedules in {where} (seed {opts.seed}){lost}; saved: "
            + ", ".join(escaped(str(saved[k])) for k in sorted(best))
            + gap
        )
        return EXIT_FOUND
    if flaky:
        reporter.line(
            f"no violation reproduced after {schedules} schedules in {where}; "
            f"{len(flaky)} flaky, not counted ({', '.join(sorted(flaky))}){lost}{gap}"
        )
        return EXIT_FLAKY
    if missed:
        reporter.line(f"none found after {schedules} schedules in {where}{lost}{gap}")
        if not done and len(outcome.refused) == outcome.workers and not outcome.lost:
            return EXIT_INPUT  # no worker came up (e.g. no PostgreSQL anywhere)
        return EXIT_HARNESS
    complete = not unsearched and all(d.answer["complete"] for d in done)
    if opts.strategy == "exhaustive" and complete:
        skipped = sum(d.answer["skipped"] for d in done)
        cut = (
            f"the split and {len(todo) - 1} disjoint subtrees"
            if todo and todo[0].label == SPLIT
            else f"{len(todo)} disjoint shards"
        )
        reporter.line(
            f"exhaustive: all {schedules} schedules of {cut} explored"
            f" on {workers} worker(s), none violates ({opts.store}, {skipped} redundant"
            f" branches skipped){lost}{_extras(done)}"
        )
    elif opts.strategy == "exhaustive":
        reporter.line(
            f"{'budget spent' if opts.budget else '--max-examples reached'} after"
            f" {schedules} schedules in {where}: none found, search"
            f" incomplete ({opts.store}, exhaustive){lost}{gap}"
        )
    else:
        reporter.line(
            f"none found after {schedules} schedules in {where} ({opts.store},"
            f" {opts.strategy}, seeds {opts.seed}..{opts.seed + len(todo) - 1}){lost}{gap}"
        )
    return EXIT_OK


_BESIDE = {".html": "page", ".spec": "as a .spec"}
_FILE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


def _save(out: Path, files: list[tuple[str, bytes]]) -> list[Path]:
    """Write one counterexample's files (scenario, page, .spec) under ``out``."""
    paths = []
    for name, data in files:
        if not _FILE.match(name) or len(name) > 240:
            raise InputError(f"a worker sent a file name racesim does not write: {name!r}")
        paths.append(save(bytes(data).decode("utf-8"), out / name))
    return paths


def _extras(done: list[Done]) -> str:
    """The parts' clock moves and added faults, summed (as one search's summary says them)."""
    counts = [0, 0]
    seen = False
    for d in done:
        found = _EXTRAS.search(str(d.answer["summary"]))
        if found:
            seen = True
            counts[0] += int(found.group(1))
            counts[1] += int(found.group(2))
    if not seen:
        return ""
    return f"; {counts[0]} schedule(s) with a clock move, {counts[1]} with an added fault"


_EXTRAS = re.compile(r"(\d+) schedule\(s\) with a clock move, (\d+) with an added fault")
