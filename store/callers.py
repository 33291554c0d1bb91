"""The reference system's callers, written once as programs the harness steps through.

A program is a generator: it yields one ``Call`` per database call (or per piece
of work without one), and receives the call's result back, or has the call's
exception raised at the ``yield``. It returns the caller's final answer as a
short string. A program never knows whether a script or an explorer drives it.
The call kinds are racesim's (:data:`racesim.system.CallKind`): ``db`` calls are
methods of the marker store; ``send`` is the async invoke, ``receive`` a
background invocation's arrival (from the run its ``invoked_by`` option names).
"""

from __future__ import annotations

import re

from racesim.store.interface import MarkResult, StoreInputError, task_lock_key
from racesim.system import Call, InjectedFault, Option, Program, RunContext
from racesim.system import ProgramRun as Run

FAULTS = ("invoke_fails", "persist_fails", "crash_before_clear", "lock_check_fails")
"""Faults a scenario can put on a run; each program honours those it can meet."""


def _collection(ctx: RunContext, token: str) -> Run:
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


def cron(ctx: RunContext) -> Run:
    """A cron scheduler run: mark, collect whatever mark said, then the deferred clear."""
    result: MarkResult = yield Call("mark")
    outcome = yield from _collection(ctx, result.token)
    return outcome if result.ok else f"{outcome} (mark was refused)"


def refresh(ctx: RunContext) -> Run:
    """``POST /api/recommendations/refresh``: freshness, mark, then sync or async collection."""
    yield Call("get_freshness")
    result: MarkResult = yield Call("mark")
    if not result.ok:
        return "409 collection already in progress"
    if ctx.options.get("mode", "sync") == "sync":
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


def background(ctx: RunContext) -> Run:
    """An async invocation: advisory lock, collection with the payload's token, unlock."""
    token: str | None = yield Call("receive", (str(ctx.options["invoked_by"]),), kind="receive")
    if token is None:
        return "no invocation delivered"
    key = task_lock_key(str(ctx.options.get("task", "recommendations")))
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


def poll(ctx: RunContext) -> Run:
    """The page: poll freshness until the refresh looks finished, or give up."""
    polls = int(ctx.options.get("polls", 120))
    for n in range(1, polls + 1):
        f = yield Call("get_freshness")
        if f.started_at is None or (f.collected_at is not None and f.collected_at >= f.started_at):
            return f"banner gone after {n} poll(s)"
    return f"gave up after {polls} polls, banner still up"


_ROW = "SELECT id FROM recommendations_state WHERE id = 1 FOR UPDATE"
_ADVISORY = "SELECT pg_advisory_xact_lock(hashtext('racesim-locker'))"


def locker(ctx: RunContext) -> Run:
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


def _whole(lo: int, hi: int) -> Option:
    return Option(
        lambda v: isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi,
        f"use a whole number from {lo} to {hi}",
    )


_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,39}$")
_NAME = Option(
    lambda v: isinstance(v, str) and bool(_NAME_RE.match(v)),
    "use a task name of letters, digits, - or _",
)
_MODE = Option(lambda v: v in ("sync", "async"), 'use "sync" or "async"')
_INVOKER = Option(_NAME.check, "name the refresh actor whose invoke delivers this run")
_HOLD = Option(
    lambda v: v in ("row", "advisory", "row+advisory", "advisory+row"),
    'use "row", "advisory", "row+advisory" or "advisory+row"',
)
_COLLECTION = {"collect", "upsert_recommendations", "set_collection_error", "crash", "clear"}

PROGRAMS: dict[str, Program] = {
    "cron": Program(
        cron,
        frozenset({"mark", *_COLLECTION}),
        faults=frozenset({"persist_fails", "crash_before_clear"}),
    ),
    "refresh": Program(
        refresh,
        frozenset({"get_freshness", "mark", "invoke", *_COLLECTION}),
        {"mode": _MODE},
        frozenset(FAULTS) - {"lock_check_fails"},
    ),
    "background": Program(
        background,
        frozenset({"receive", "try_task_lock", "release_task_lock", *_COLLECTION}),
        {"invoked_by": _INVOKER, "task": _NAME},
        frozenset({"persist_fails", "crash_before_clear", "lock_check_fails"}),
    ),
    "poll": Program(poll, frozenset({"get_freshness"}), {"polls": _whole(1, 1000)}),
    "locker": Program(
        locker,
        frozenset({"begin", "lock_row", "lock_advisory", "commit", "rollback"}),
        {"hold": _HOLD},
    ),
}
"""Programs by the name a scenario uses, with the options, faults and calls each knows."""
