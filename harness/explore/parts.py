"""How a spread exploration is cut into parts (:mod:`racesim.explore.distribute`).

``exhaustive``  first one part, the **split**: it walks the search's tree down to
                the first depth with at least ``NODES_PER_WORKER`` nodes per worker,
                runs the schedules that end above it, and answers with those nodes;
                then one part per node (**subtree** ``i``/``M``), handed out one at a
                time as workers come free, so a worker that drew small subtrees takes
                more of them and the workers finish together. The subtrees keep the
                sleep sets the one-process search has at their roots: together with
                the split's own schedules they are exactly its schedules.
                Under ``--shard K/N``, ``SHARDS_PER_WORKER`` hashed shards per worker
                instead (part ``j`` is shard ``K + N*j``/``N*M``; together they
                cover exactly shard ``K/N``), each with ``1/M`` of ``--max-examples``.
``hypothesis``, ``pct``, ``portfolio``  one part per worker: seed ``S + j`` for part
                ``j`` of a search with seed ``S``, with ``1/M`` of the examples
                (rounded up; ``--max-examples``, else the profile's or the
                strategy's default).

Example::

    first = parts(opts, 2)  # [the split] for exhaustive, else one part per worker
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import execnet

from racesim.errors import InputError
from racesim.explore.profiles import profile_name

if TYPE_CHECKING:
    from racesim.explore.options import ExploreOptions

__all__ = [
    "NODES_PER_WORKER",
    "PCT_DEFAULT",
    "SHARDS_PER_WORKER",
    "SPLIT",
    "Done",
    "Part",
    "gateway_specs",
    "parts",
    "splits",
    "subtree_parts",
]

PCT_DEFAULT = 200
"""Schedules of a pct search given neither --max-examples nor --budget."""
SHARDS_PER_WORKER = 4
"""Under --shard K/N, an exhaustive search is cut into this many hashed shards per worker."""
NODES_PER_WORKER = 8
"""The split goes down to the first depth with at least this many nodes per worker:
subtrees differ in size, and more of them, handed out as workers come free, even
out the load (each costs a part's round trip and its prefix's steps)."""
SPLIT = "split"
"""The label of the part that splits an exhaustive search into subtrees."""
_SOCKET = re.compile(r"^[A-Za-z0-9_.:\[\]-]+:\d{1,5}$")


@dataclass(frozen=True)
class Part:
    """One worker's share of the search: its label and its explore options."""

    index: int
    label: str
    options: dict[str, Any]


@dataclass
class Done:
    """A part a worker finished, and its answer."""

    part: Part
    worker: str
    answer: dict[str, Any]


def gateway_specs(workers: int | None, tx: list[str] | None) -> list[str]:
    """The execnet gateway specs of ``--workers N`` (``N`` times ``popen``) and each
    ``--tx`` (``popen``, ``socket=HOST:PORT``, ``ssh=HOST``, optionally ``K*SPEC``)."""
    specs: list[str] = []
    if workers is not None:
        if not 1 <= workers <= 256:
            raise InputError(f"--workers: expected 1 to 256 worker processes, got {workers}")
        specs += ["popen"] * workers
    for text in tx or ():
        times = re.match(r"^(\d+)\*(.*)$", text)
        count, spec = (times.group(1), times.group(2)) if times else ("1", text)
        if not 1 <= int(count) <= 256:
            raise InputError(f"--tx: expected K*SPEC with K from 1 to 256, got {text!r}")
        try:
            parsed = execnet.XSpec(spec)
        except (ValueError, AttributeError) as exc:
            raise InputError(f"--tx: cannot read {text!r} ({exc})") from None
        kinds = [k for k in ("popen", "socket", "ssh") if getattr(parsed, k, None)]
        if len(kinds) != 1 or (parsed.socket and not _SOCKET.match(parsed.socket)):
            raise InputError(
                f"--tx: expected an execnet gateway: popen, socket=HOST:PORT or ssh=HOST"
                f" (e.g. --tx socket=10.0.0.2:8888), got {text!r}"
            )
        specs += [spec] * int(count)
    return specs


def _base(opts: ExploreOptions) -> dict[str, Any]:
    return {
        "seed": opts.seed,
        "budget": opts.budget,
        "max_examples": opts.max_examples,
        "strategy": opts.strategy,
        "profile": opts.profile,
        "shard": [1, 1],
        "config": opts.config,
        "html": opts.html,
        "example_db": opts.example_db,
        "clock_moves": opts.clock_moves,
        "split": 0,
        "subtree": None,
        "export_spec": False,
    }


def splits(opts: ExploreOptions) -> bool:
    """Whether the search is cut by a split into subtrees (exhaustive, not sharded)."""
    return opts.strategy == "exhaustive" and opts.shard == (1, 1)


def parts(opts: ExploreOptions, workers: int) -> list[Part]:
    """The parts ``opts`` is cut into up front, for ``workers`` workers (see the
    module's notes): the split alone for an unsharded exhaustive search."""
    base = _base(opts)
    if splits(opts):
        return [Part(0, SPLIT, {**base, "split": NODES_PER_WORKER * workers})]
    if opts.strategy == "exhaustive":
        k, n = opts.shard
        count = workers * SHARDS_PER_WORKER
        share = None if opts.max_examples is None else max(1, math.ceil(opts.max_examples / count))
        return [
            Part(
                j,
                f"shard {k + n * j}/{n * count}",
                {**base, "shard": [k + n * j, n * count], "max_examples": share},
            )
            for j in range(count)
        ]
    examples = opts.max_examples
    if examples is None and opts.budget is None:
        if opts.strategy == "pct":
            examples = PCT_DEFAULT
        elif opts.strategy == "portfolio":
            from racesim.explore.portfolio import DEFAULT_SCHEDULES

            examples = DEFAULT_SCHEDULES
        else:
            from hypothesis import settings

            examples = settings.get_profile(profile_name(opts.profile)).max_examples
    share = None if examples is None else max(1, math.ceil(examples / workers))
    return [
        Part(j, f"seed {opts.seed + j}", {**base, "seed": opts.seed + j, "max_examples": share})
        for j in range(workers)
    ]


def subtree_parts(split: Part, subtrees: list[dict[str, Any]], first: int) -> list[Part]:
    """One part per subtree the split answered with, numbered from ``first``."""
    count = len(subtrees)
    return [
        Part(
            first + i,
            f"subtree {i + 1}/{count}",
            {**split.options, "split": 0, "subtree": subtree},
        )
        for i, subtree in enumerate(subtrees)
    ]
