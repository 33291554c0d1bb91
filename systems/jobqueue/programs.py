"""The job queue's programs: a producer that enqueues and a worker that claims and processes.

Each is a generator yielding one ``Call`` per database call, as every racesim
program is; the harness steps it and sends each call's result back.

``worker`` loops: ``find`` (a plain read: is there a job?), ``claim``, then
``process``, until it has processed ``jobs`` jobs (option, default 1) or finds
the queue empty. A claim that comes back empty (another worker took the job
first) or a processing the queue refuses (the lease ran out and the job was
taken over) sends it back to ``find``. With the fault ``crash_mid_job`` the
worker dies right after its claim: its job comes back only when the lease runs out.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from racesim.store.callers import Call
from racesim.systems.jobqueue.interface import Claimed

Program = Generator[Call, Any, str]

FAULTS = ("crash_mid_job",)


class Context(Protocol):
    """What a run of a program knows about itself."""

    @property
    def options(self) -> Mapping[str, Any]: ...

    @property
    def faults(self) -> frozenset[str]: ...


def _count(ctx: Context, name: str) -> int:
    return int(ctx.options.get(name, 1))


def producer(ctx: Context) -> Program:
    """Enqueue ``jobs`` jobs (option, default 1), one call each."""
    total = _count(ctx, "jobs")
    for n in range(1, total + 1):
        yield Call("enqueue", (f"job-{n}",))
    return f"enqueued {total} job(s)"


def worker(ctx: Context) -> Program:
    """Claim and process up to ``jobs`` jobs; stop when the queue looks empty."""
    wanted = _count(ctx, "jobs")
    done = 0
    for _ in range(wanted + 2):
        found: int | None = yield Call("find")
        if found is None:
            return f"queue empty after {done} job(s)"
        claim: Claimed | None = yield Call("claim", (found,))
        if claim is None:
            continue  # another worker took it first
        if "crash_mid_job" in ctx.faults:
            yield Call("crash", kind="crash")
            return f"crashed holding job {claim.job}"
        if (yield Call("process", (claim.job, claim.attempt))):
            done += 1
            if done == wanted:
                return f"processed {done} job(s)"
    return f"stopped after {wanted + 2} rounds, {done} job(s) processed"


@dataclass(frozen=True)
class ProgramSpec:
    make: Callable[[Context], Program]
    options: frozenset[str]
    faults: frozenset[str]
    calls: frozenset[str]


PROGRAMS: dict[str, ProgramSpec] = {
    "producer": ProgramSpec(producer, frozenset({"jobs"}), frozenset(), frozenset({"enqueue"})),
    "worker": ProgramSpec(
        worker,
        frozenset({"jobs"}),
        frozenset(FAULTS),
        frozenset({"find", "claim", "process", "crash"}),
    ),
}
"""Programs by the name a scenario uses, with the options, faults and calls each knows."""
