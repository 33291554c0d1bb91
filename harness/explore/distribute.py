"""Spread one exploration over execnet gateways (``--workers N``, ``--tx SPEC``).

The search is cut into parts, each an ordinary exploration:

``exhaustive``  ``M`` = 4 per worker disjoint shards (``--shard``'s split: part ``j``
                is shard ``j + 1``/``M``; under ``--shard K/N`` it is shard
                ``K + N*j``/``N*M``, which together cover exactly shard ``K/N``);
``hypothesis``, ``pct``  one part per worker: seed ``S + j`` for part ``j`` of a
                search with seed ``S``, with ``1/M`` of the examples (rounded up;
                ``--max-examples``, else the profile's or pct's default);
                ``--budget`` is the whole search's wall time: a part is handed
                out only before it is spent, with what is left of it.

Each worker (:mod:`racesim.explore.worker`) brings up its own PostgreSQL as a
run would (or uses ``--dsn``) and takes parts as it comes free until none is left. Counterexamples
come back as files and are merged: per invariant and cause the smallest is saved
under ``--out``. A worker lost mid-part is reported and its part is run again on a
worker still up (at most twice in all); a part no worker finished is named as
not searched, and the search is never called complete.

Example::

    status = spread(
        opts, ["popen", "popen"], pg="auto", dsn=None, reporter=Reporter(), system="reference"
    )
"""

from __future__ import annotations

import math
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import execnet

from racesim.errors import EXIT_FLAKY, EXIT_FOUND, EXIT_HARNESS, EXIT_INPUT, EXIT_OK, InputError
from racesim.explore.profiles import profile_name
from racesim.explore.run import SHRINK_ALLOWANCE
from racesim.formats.names import escaped
from racesim.formats.writer import save
from racesim.report.text import Reporter

if TYPE_CHECKING:
    from racesim.explore.run import ExploreOptions

__all__ = ["ATTEMPTS", "Part", "gateway_specs", "parts", "spread"]

ATTEMPTS = 2
"""A part is run at most this many times (a lost worker's part once more)."""
READY_SECONDS = 600.0
GRACE_SECONDS = 120.0
"""Beyond its budget and shrinking allowance, how long a part may take to answer."""
"""How long a worker may take to bring up its PostgreSQL."""
SPENT = "budget spent before it started"
PCT_DEFAULT = 200
"""Schedules of a pct search given neither --max-examples nor --budget."""
SHARDS_PER_WORKER = 4
"""An exhaustive search is cut into this many shards per worker, handed out as
workers come free: shards differ in size, and more of them even out the load."""
_SOCKET = re.compile(r"^[A-Za-z0-9_.:\[\]-]+:\d{1,5}$")
_LOST = (EOFError, OSError, execnet.HostNotFound, execnet.RemoteError, execnet.TimeoutError)


@dataclass(frozen=True)
class Part:
    """One worker's share of the search: its label and its explore options."""

    index: int
    label: str
    options: dict[str, Any]


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


def parts(opts: ExploreOptions, count: int) -> list[Part]:
    """``opts`` cut into ``count`` parts (see the module's notes)."""
    k, n = opts.shard
    base = {
        "seed": opts.seed,
        "budget": opts.budget,
        "max_examples": opts.max_examples,
        "strategy": opts.strategy,
        "profile": opts.profile,
        "shard": [1, 1],
        "config": opts.config,
        "html": opts.html,
        "example_db": opts.example_db,
        "export_spec": False,
    }
    examples = opts.max_examples
    if examples is None and opts.budget is None and opts.strategy != "exhaustive":
        if opts.strategy == "pct":
            examples = PCT_DEFAULT
        elif opts.strategy == "portfolio":
            from racesim.explore.portfolio import DEFAULT_SCHEDULES

            examples = DEFAULT_SCHEDULES
        else:
            from hypothesis import settings

            examples = settings.get_profile(profile_name(opts.profile)).max_examples
    share = None if examples is None else max(1, math.ceil(examples / count))
    out = []
    for j in range(count):
        options = {**base, "max_examples": share}
        if opts.strategy == "exhaustive":
            options["shard"] = [k + n * j, n * count]
            label = f"shard {k + n * j}/{n * count}"
        else:
            options["seed"] = opts.seed + j
            label = f"seed {opts.seed + j}"
        out.append(Part(j, label, options))
    return out


@dataclass
class _Done:
    part: Part
    worker: str
    answer: dict[str, Any]


@dataclass
class _State:
    """What the worker threads share, under one lock."""

    pending: list[Part]
    reporter: Reporter
    lock: threading.Condition = field(default_factory=threading.Condition)
    running: int = 0
    tries: dict[int, int] = field(default_factory=dict)
    done: list[_Done] = field(default_factory=list)
    given_up: dict[int, str] = field(default_factory=dict)
    why: dict[int, str] = field(default_factory=dict)
    """Why each part's last try failed."""
    lost: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    deadline: float | None = None
    """When the budget is spent (a ``time.monotonic()`` value); no part starts after it."""

    def say(self, text: str) -> None:
        with self.lock:
            self.reporter.line(text)

    def take(self) -> Part | None:
        """The next part to run; None when none is left and none may come back, or
        the budget is spent (what is left stays pending: not searched)."""
        with self.lock:
            while not self.pending and self.running:
                self.lock.wait()
            left = None if self.deadline is None else self.deadline - time.monotonic()
            if not self.pending or (left is not None and left <= 0):
                return None
            part = self.pending.pop(0)
            if left is not None:
                part = Part(part.index, part.label, {**part.options, "budget": left})
            self.running += 1
            self.tries[part.index] = self.tries.get(part.index, 0) + 1
            return part

    def finish(self, done: _Done) -> None:
        with self.lock:
            self.running -= 1
            self.done.append(done)
            self.lock.notify_all()

    def fail(self, part: Part, worker: str, why: str) -> None:
        with self.lock:
            self.running -= 1
            self.lost.append(f"{worker} lost during {part.label}: {why}")
            self.why[part.index] = f"{worker}: {why}"
            if self.tries[part.index] < ATTEMPTS:
                self.pending.append(part)
                self.reporter.line(
                    f"{worker}: lost during {part.label} ({why}); it runs again on a worker still up"
                )
            else:
                self.given_up[part.index] = f"{worker}: {why}"
                self.reporter.line(f"{worker}: lost during {part.label} ({why}); given up")
            self.lock.notify_all()


def spread(
    opts: ExploreOptions,
    specs: list[str],
    *,
    pg: str,
    dsn: str | None,
    reporter: Reporter,
    export_spec: bool = False,
    system: str,
) -> int:
    """Run ``opts`` over one worker per gateway spec, each resolving ``system`` (a
    system's name: it crosses to another process); print what was found and return
    the exit status (as ``racesim explore``'s)."""
    from racesim.explore import worker

    todo = parts(opts, len(specs) * (SHARDS_PER_WORKER if opts.strategy == "exhaustive" else 1))
    for part in todo:
        part.options["export_spec"] = export_spec
    deadline = None if opts.budget is None else time.monotonic() + opts.budget
    state = _State(list(todo), reporter, deadline=deadline)
    setup = {"pg": pg, "dsn": dsn, "system": system, "store": opts.store}
    group = execnet.Group()
    threads = [
        threading.Thread(
            target=_serve, args=(group, spec, f"worker {i + 1} ({spec})", setup, state, worker)
        )
        for i, spec in enumerate(specs)
    ]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        group.terminate(timeout=10.0)
    with state.lock:
        spent = state.deadline is not None and time.monotonic() >= state.deadline
        unsearched = {
            p.index: state.why.get(p.index) or (SPENT if spent else "no worker was up to take it")
            for p in state.pending
        }
        unsearched.update(state.given_up)
    return _merge(opts, todo, state, unsearched, reporter)


def _serve(
    group: execnet.Group,
    spec: str,
    name: str,
    setup: dict[str, Any],
    state: _State,
    module: Any,
) -> None:
    """One worker's thread: bring the gateway up, then run parts until none is left.
    Whatever goes wrong, a part it took is finished or failed, never left running
    (the other threads wait for it)."""
    current: list[Part] = []
    try:
        _work(group, spec, name, setup, state, module, current)
    except Exception as exc:  # a malformed answer or a fault of racesim's own
        if current:
            state.fail(current[0], name, f"{type(exc).__name__}: {_why(exc)}")
        else:
            state.refused.append(f"{name}: {_why(exc)}")
            state.say(f"{name}: not started ({type(exc).__name__}: {_why(exc)})")


def _work(
    group: execnet.Group,
    spec: str,
    name: str,
    setup: dict[str, Any],
    state: _State,
    module: Any,
    current: list[Part],
) -> None:
    try:
        gateway = group.makegateway(spec)
        channel = gateway.remote_exec(module)
        channel.send(setup)
        ready = channel.receive(timeout=READY_SECONDS)
    except _LOST as exc:
        state.refused.append(f"{name}: not started ({_why(exc)})")
        state.say(f"{name}: not started ({_why(exc)})")
        return
    if not ready.get("ready"):
        state.refused.append(f"{name}: {ready.get('error')}")
        state.say(f"{name}: no PostgreSQL: {ready.get('error')}")
        return
    state.say(f"{name}: ready on {ready['where']}")
    for note in ready.get("notes", ()):
        state.say(f"{name}: {note}")
    while (part := state.take()) is not None:
        current[:] = [part]
        try:
            channel.send(part.options)
            answer = channel.receive(timeout=_patience(part))
        except _LOST as exc:
            current.clear()
            state.fail(part, name, _why(exc))
            return
        if "error" in answer:
            current.clear()
            state.fail(part, name, str(answer["error"]))
            return
        # The part's own summary names files in the worker's folder: the merge saves them.
        summary = str(answer["summary"]).split("; saved: ")[0]
        summary = summary.removeprefix(f"{part.label}: ")
        if not all(key in answer for key in _ANSWER):
            raise ValueError(f"the worker's answer lacks {sorted(_ANSWER - set(answer))}")
        state.say(f"{name}: {part.label}: {summary}")
        current.clear()
        state.finish(_Done(part, name, answer))
    try:
        channel.send(None)
        channel.waitclose(timeout=READY_SECONDS)
    except _LOST:
        pass  # its parts are in; a worker that fails while it cleans up loses nothing


def _patience(part: Part) -> float | None:
    """How long a part with a budget may take before its worker counts as lost (a
    worker cut off without its connection closing); a part without one may take
    as long as it takes."""
    budget = part.options.get("budget")
    return None if budget is None else float(budget) * (1 + SHRINK_ALLOWANCE) + GRACE_SECONDS


_ANSWER = frozenset({"schedules", "skipped", "complete", "seconds", "summary", "found", "flaky"})


def _why(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]


def _merge(
    opts: ExploreOptions,
    todo: list[Part],
    state: _State,
    unsearched: dict[int, str],
    reporter: Reporter,
) -> int:
    """Save the smallest counterexample per key, print them and the summary."""
    done = sorted(state.done, key=lambda d: d.part.index)
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
    missed = {i: why for i, why in unsearched.items() if why != SPENT}
    lost = ""
    if state.lost:
        lost = f"; {len(state.lost)} worker(s) lost" + ("" if missed else ", their parts run again")
    gap = ""
    if missed:
        names = ", ".join(f"{todo[i].label} ({why})" for i, why in sorted(missed.items()))
        gap = f"; search incomplete: NOT searched: {names}"
    if len(missed) < len(unsearched):
        gap += f"; {len(unsearched) - len(missed)} part(s) not started: budget spent"
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
    if unsearched and any(why != SPENT for why in unsearched.values()):
        reporter.line(f"none found after {schedules} schedules in {where}{lost}{gap}")
        if not done and len(state.refused) == len(todo) and not state.lost:
            return EXIT_INPUT  # no worker came up (e.g. no PostgreSQL anywhere)
        return EXIT_HARNESS
    complete = not unsearched and all(d.answer["complete"] for d in done)
    if opts.strategy == "exhaustive" and complete:
        skipped = sum(d.answer["skipped"] for d in done)
        reporter.line(
            f"exhaustive: all {schedules} schedules of {len(todo)} disjoint shards explored"
            f" on {workers} worker(s), none violates ({opts.store}, {skipped} redundant"
            f" branches skipped){lost}"
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
