"""Spread one exploration over execnet gateways (``--workers N``, ``--tx SPEC``).

The search is cut into parts, each an ordinary exploration
(:mod:`racesim.explore.parts` says how: an exhaustive search is split into
subtrees handed out one at a time as workers come free; the other strategies
into one seed per worker). ``--budget`` is the whole search's wall time: a part
is handed out only before it is spent, with what is left of it; so is
``--max-examples`` of an exhaustive search (a part gets what is left of it).

Each worker (:mod:`racesim.explore.worker`) brings up its own PostgreSQL as a
run would (or uses ``--dsn``), keeps one database for all its parts, and takes
parts as it comes free until none is left. Counterexamples come back as files
and are merged (:mod:`racesim.explore.merge`): per invariant and cause the
smallest is saved under ``--out``. A worker lost mid-part is reported and its
part is run again on a worker still up (at most twice in all); a part no worker
finished is named as not searched, and the search is never called complete.

Example::

    status = spread(
        opts, ["popen", "popen"], pg="auto", dsn=None, reporter=Reporter(), system="reference"
    )
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import execnet

from racesim.explore.keeper import SHRINK_ALLOWANCE
from racesim.explore.merge import REACHED, SPENT, Outcome, merge
from racesim.explore.parts import SPLIT, Done, Part, gateway_specs, parts, subtree_parts
from racesim.report.text import Reporter

if TYPE_CHECKING:
    from racesim.explore.options import ExploreOptions

__all__ = ["ATTEMPTS", "Part", "gateway_specs", "parts", "spread"]

ATTEMPTS = 2
"""A part is run at most this many times (a lost worker's part once more)."""
READY_SECONDS = 600.0
"""How long a worker may take to bring up its PostgreSQL."""
GRACE_SECONDS = 120.0
"""Beyond its budget and shrinking allowance, how long a part may take to answer."""
_LOST = (EOFError, OSError, execnet.HostNotFound, execnet.RemoteError, execnet.TimeoutError)


@dataclass
class _State:
    """What the worker threads share, under one lock."""

    todo: list[Part]
    """Every part made so far (a split adds its subtrees)."""
    reporter: Reporter
    pending: list[Part] = field(default_factory=list)
    lock: threading.Condition = field(default_factory=threading.Condition)
    running: int = 0
    tries: dict[int, int] = field(default_factory=dict)
    done: list[Done] = field(default_factory=list)
    given_up: dict[int, str] = field(default_factory=dict)
    why: dict[int, str] = field(default_factory=dict)
    """Why each part's last try failed."""
    lost: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    deadline: float | None = None
    """When the budget is spent (a ``time.monotonic()`` value); no part starts after it."""
    limit: int | None = None
    """Schedules the whole search may run (exhaustive --max-examples): a part gets a
    share of what no finished or running part has, and none starts once none is left."""
    counted: int = 0
    reserved: dict[int, int] = field(default_factory=dict)
    """What each running part may run of ``limit``."""
    workers: int = 1

    def say(self, text: str) -> None:
        with self.lock:
            self.reporter.line(text)

    def take(self) -> Part | None:
        """The next part to run; None when none is left and none may come back, or
        the budget or --max-examples is spent (what is left stays pending: not searched)."""
        with self.lock:
            while (not self.pending or self._free() == 0) and self.running:
                self.lock.wait()
            left = None if self.deadline is None else self.deadline - time.monotonic()
            if not self.pending or (left is not None and left <= 0) or self._free() == 0:
                return None
            part = self.pending.pop(0)
            if left is not None:
                part = Part(part.index, part.label, {**part.options, "budget": left})
            free = self._free()
            if free is not None:
                share = -(-free // self.workers)  # rounded up
                self.reserved[part.index] = share
                part = Part(part.index, part.label, {**part.options, "max_examples": share})
            self.running += 1
            self.tries[part.index] = self.tries.get(part.index, 0) + 1
            return part

    def _free(self) -> int | None:
        """Of ``limit``, what no finished or running part has (None: no limit)."""
        if self.limit is None:
            return None
        return max(0, self.limit - self.counted - sum(self.reserved.values()))

    def finish(self, done: Done) -> None:
        with self.lock:
            self.running -= 1
            self.reserved.pop(done.part.index, None)
            self.done.append(done)
            self.counted += int(done.answer["schedules"])
            subtrees = done.answer.get("subtrees") or []
            if done.part.label == SPLIT and subtrees:
                made = subtree_parts(self.todo[0], subtrees, len(self.todo))
                self.todo += made
                self.pending += made
            self.lock.notify_all()

    def fail(self, part: Part, worker: str, why: str) -> None:
        with self.lock:
            self.running -= 1
            self.reserved.pop(part.index, None)
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

    def unsearched(self) -> dict[int, str]:
        """The parts no worker finished, and why."""
        with self.lock:
            spent = self.deadline is not None and time.monotonic() >= self.deadline
            reached = self._free() == 0
            unstarted = SPENT if spent else REACHED if reached else "no worker was up to take it"
            out = {p.index: self.why.get(p.index) or unstarted for p in self.pending}
            out.update(self.given_up)
            return out


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

    todo = parts(opts, len(specs))
    for part in todo:
        part.options["export_spec"] = export_spec
    deadline = None if opts.budget is None else time.monotonic() + opts.budget
    state = _State(list(todo), reporter, pending=list(todo), deadline=deadline)
    if todo[0].label == SPLIT and opts.max_examples is not None:
        state.limit, state.workers = opts.max_examples, len(specs)
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
    outcome = Outcome(
        state.todo, state.done, state.unsearched(), state.lost, state.refused, len(specs)
    )
    return merge(opts, outcome, reporter)


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
        state.finish(Done(part, name, answer))
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
