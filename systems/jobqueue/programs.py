"""The job queue's programs: a producer that enqueues and a worker that claims and processes.

Each is a generator yielding one ``Call`` per database call, as every racesim
program is; the harness steps it and sends each call's result back.

``worker`` loops: ``find`` (a plain read: is there a job?), ``claim``, then
``process``, until it has processed ``jobs`` jobs (option, default 1) or finds
the queue empty. A claim that comes back empty (another worker took the job
first) or a processing the queue refuses (the lease ran out and the job was
taken over) sends it back to ``find``. With the fault ``crash_mid_job`` the
worker dies right after its claim: its job comes back only when the lease runs out.

``auditor`` is a maintenance transaction holding the first job's row lock
(``SELECT ... FOR UPDATE``) from ``lock_first`` to ``commit``: a claim of that
row waits for it, or skips it.
"""

from __future__ import annotations

from racesim.system import Call, Option, Program, ProgramRun, RunContext
from racesim.systems.jobqueue.interface import Claimed

FAULTS = ("crash_mid_job",)
MOST_JOBS = 20


def _count(ctx: RunContext, name: str) -> int:
    return int(ctx.options.get(name, 1))


def producer(ctx: RunContext) -> ProgramRun:
    """Enqueue ``jobs`` jobs (option, default 1), one call each."""
    total = _count(ctx, "jobs")
    for n in range(1, total + 1):
        yield Call("enqueue", (f"job-{n}",))
    return f"enqueued {total} job(s)"


def worker(ctx: RunContext) -> ProgramRun:
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


LOCK_FIRST = "SELECT id FROM jobs ORDER BY id LIMIT 1 FOR UPDATE"


def auditor(ctx: RunContext) -> ProgramRun:
    """A maintenance transaction that holds the first job's row until it commits."""
    yield Call("begin", kind="sql", sql="BEGIN")
    try:
        yield Call("lock_first", kind="sql", sql=LOCK_FIRST)
    except Exception as exc:  # a lock timeout or deadlock aborts the transaction
        yield Call("rollback", kind="sql", sql="ROLLBACK")
        return f"rolled back after {type(exc).__name__}"
    yield Call("commit", kind="sql", sql="COMMIT")
    return "committed"


def _jobs(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MOST_JOBS


JOBS = Option(_jobs, f"use a whole number from 1 to {MOST_JOBS}")

PROGRAMS: dict[str, Program] = {
    "producer": Program(producer, frozenset({"enqueue"}), {"jobs": JOBS}),
    "worker": Program(
        worker,
        frozenset({"find", "claim", "process", "crash"}),
        {"jobs": JOBS},
        frozenset(FAULTS),
    ),
    "auditor": Program(auditor, frozenset({"begin", "lock_first", "commit", "rollback"})),
}
"""Programs by the name a scenario uses, with the options, faults and calls each knows."""
