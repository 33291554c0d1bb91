"""The reference system's callers, written once as programs the harness steps through.

A program is a generator: it yields one ``Call`` per database call (or per piece
of work without one), and receives the call's result back, or has the call's
exception raised at the ``yield``. It returns the caller's final answer as a
short string. A program never knows whether a script or an explorer drives it.

Call kinds the harness understands:

``db``       a method of the marker store, run on the run's own session;
``sql``      one fixed statement on the run's session (the lock-holding programs);
``work``     work without database calls (collecting); a step of its own so a
             schedule can place others "during" it;
``send``     hand a payload to the platform (the async invoke);
``receive``  take a delivered payload (a background invocation's arrival);
``crash``    the process dies here: its session is closed, deferred work never runs.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any, Literal

from racesim.store.interface import MarkResult, StoreInputError, task_lock_key

Kind = Literal["db", "sql", "work", "send", "receive", "crash"]
Program = Generator["Call", Any, str]

FAULTS = ("invoke_fails", "persist_fails", "crash_before_clear", "lock_check_fails")
"""Faults a scenario can put on a run; each program honours those it can meet."""


class InjectedFault(RuntimeError):
    """A failure the scenario asked for (the invoke, persist or lock check fails)."""


@dataclass(frozen=True)
class Call:
    """One step of a program: what it asks for next."""

    name: str
    args: tuple[Any, ...] = ()
    kind: Kind = "db"
    sql: str = ""
    fault: str = ""
    """When set, the call fails with ``InjectedFault(fault)`` instead of running."""


@dataclass(frozen=True)
class RunContext:
    """What a run of a program knows about itself: its options and its store's kind."""

    uses_tokens: bool
    mode: str = "sync"
    faults: frozenset[str] = frozenset()
    task: str = "recommendations"
    polls: int = 120
    options: dict[str, Any] = field(default_factory=dict)


def _collection(ctx: RunContext, token: str) -> Program:
    """The scheduler's collection: collect, persist, deferred clear."""
    yield Call("collect", kind="work")
    fault = "persist failed" if "persist_fails" in ctx.faults else ""
    try:
        yield Call("upsert_recommendations", fault=fault)
    except InjectedFault as exc:
        yield Call("set_collection_error", (str(exc),))
    if "crash_before_clear" in ctx.faults:
        yield Call("crash", kind="crash")
        return "crashed before its deferred clear"
    try:
        yield Call("clear", (token,))
    except StoreInputError:
        return "done (deferred clear refused: no token)"
    return "done"


def cron(ctx: RunContext) -> Program:
    """A cron scheduler run: mark, collect whatever mark said, then the deferred clear."""
    result: MarkResult = yield Call("mark")
    outcome = yield from _collection(ctx, result.token)
    return outcome if result.ok else f"{outcome} (mark was refused)"


def refresh(ctx: RunContext) -> Program:
    """``POST /api/recommendations/refresh``: freshness, mark, then sync or async collection."""
    yield Call("get_freshness")
    result: MarkResult = yield Call("mark")
    if not result.ok:
        return "409 collection already in progress"
    if ctx.mode == "sync":
        outcome = yield from _collection(ctx, result.token)
        return f"200 {outcome}"
    fault = "invoke failed" if "invoke_fails" in ctx.faults else ""
    try:
        yield Call("invoke", (result.token,), kind="send", fault=fault)
    except InjectedFault:
        # Roll back on a fresh context: release the marker this handler took.
        yield Call("clear", (result.token,))
        return "502 invoke failed (marker rolled back)"
    return "202 accepted"


def background(ctx: RunContext) -> Program:
    """An async invocation: advisory lock, collection with the payload's token, unlock."""
    token: str | None = yield Call("receive", kind="receive")
    if token is None:
        return "no invocation delivered"
    key = task_lock_key(ctx.task)
    fault = "lock check failed" if "lock_check_fails" in ctx.faults else ""
    try:
        got: bool = yield Call("try_task_lock", (key,), fault=fault)
    except InjectedFault:
        return "error: lock check failed (marker kept, platform retries)"
    if not got:
        if token:
            yield Call("clear", (token,))
        return "skipped: already running"
    outcome = yield from _collection(ctx, token)
    if outcome.startswith("crashed"):
        return outcome
    yield Call("release_task_lock", (key,))
    return outcome


def poll(ctx: RunContext) -> Program:
    """The page: poll freshness until the refresh looks finished, or give up."""
    for n in range(1, ctx.polls + 1):
        f = yield Call("get_freshness")
        if f.started_at is None or (f.collected_at is not None and f.collected_at >= f.started_at):
            return f"banner gone after {n} poll(s)"
    return f"gave up after {ctx.polls} polls, banner still up"


_ROW = "SELECT id FROM recommendations_state WHERE id = 1 FOR UPDATE"
_ADVISORY = "SELECT pg_advisory_xact_lock(hashtext('racesim-locker'))"


def locker(ctx: RunContext) -> Program:
    """A maintenance transaction that holds the state row and/or an advisory lock.

    Option ``hold``: ``row`` (default), ``advisory``, ``row+advisory`` or
    ``advisory+row`` (the order in which the locks are taken).
    """
    hold = str(ctx.options.get("hold", "row"))
    yield Call("begin", kind="sql", sql="BEGIN")
    try:
        for part in hold.split("+"):
            if part == "row":
                yield Call("lock_row", kind="sql", sql=_ROW)
            else:
                yield Call("lock_advisory", kind="sql", sql=_ADVISORY)
    except Exception as exc:  # a deadlock or timeout aborts the transaction
        yield Call("rollback", kind="sql", sql="ROLLBACK")
        return f"rolled back after {type(exc).__name__}"
    yield Call("commit", kind="sql", sql="COMMIT")
    return "committed"


@dataclass(frozen=True)
class ProgramSpec:
    make: Callable[[RunContext], Program]
    options: frozenset[str]
    faults: frozenset[str]
    calls: frozenset[str]


PROGRAMS: dict[str, ProgramSpec] = {
    "cron": ProgramSpec(
        cron,
        frozenset(),
        frozenset({"persist_fails", "crash_before_clear"}),
        frozenset(
            {"mark", "collect", "upsert_recommendations", "set_collection_error", "crash", "clear"}
        ),
    ),
    "refresh": ProgramSpec(
        refresh,
        frozenset({"mode"}),
        frozenset(FAULTS) - {"lock_check_fails"},
        frozenset(
            {
                "get_freshness",
                "mark",
                "collect",
                "upsert_recommendations",
                "set_collection_error",
                "crash",
                "clear",
                "invoke",
            }
        ),
    ),
    "background": ProgramSpec(
        background,
        frozenset({"invoked_by", "task"}),
        frozenset({"persist_fails", "crash_before_clear", "lock_check_fails"}),
        frozenset(
            {
                "receive",
                "try_task_lock",
                "clear",
                "collect",
                "upsert_recommendations",
                "set_collection_error",
                "crash",
                "release_task_lock",
            }
        ),
    ),
    "poll": ProgramSpec(poll, frozenset({"polls"}), frozenset(), frozenset({"get_freshness"})),
    "locker": ProgramSpec(
        locker,
        frozenset({"hold"}),
        frozenset(),
        frozenset({"begin", "lock_row", "lock_advisory", "commit", "rollback"}),
    ),
}
"""Programs by the name a scenario uses, with the options, faults and calls each knows."""
