"""One actor's run of a user's function: the store the engine steps, the program that
names its statements.

The variant's ``open`` makes a ``FunctionStore`` on the run's own session; the
program (made right after, for the same actor) starts the function in its thread
and yields one ``Call`` per statement the function is about to send: ``s1``, ``s2``,
... with the statement's SQL. Stepping ``sN`` releases that statement (the store's
``step``). The program's answer is the function's return value, or what it raised.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import re
import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from typing import Any

import psycopg

from racesim.code.connection import gated, gated_async, restore_handlers
from racesim.code.foreign import note
from racesim.code.gate import Done, FunctionRun, Stopped
from racesim.code.reduce import StatementCall
from racesim.code.statements import Statement
from racesim.code.tidy import baseline, lasting, tidy
from racesim.model.history import Event
from racesim.model.plan import Actor
from racesim.system import Call, ProgramRun, RunContext, Session

__all__ = [
    "STATEMENT",
    "FunctionStore",
    "StatementNames",
    "answer",
    "program",
    "record",
]

STATEMENT = re.compile(r"s[1-9][0-9]{0,5}")
"""A statement's call name: ``s`` and its number in the run (``s1`` is the first)."""


class StatementNames(frozenset[str]):
    """Every statement call name ``s1``, ``s2``, ... (a schedule may name any of them)."""

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and STATEMENT.fullmatch(name) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(("s1", "s2", "s3 and on"))


NAMES = StatementNames()


class FunctionStore:
    """What the engine steps for one run: ``store.sN()`` sends the function's next
    statement and returns its command status (or raises its error)."""

    def __init__(
        self,
        session: Session,
        functions: Mapping[str, Callable[..., Any]],
        gives: str,
        autocommit: bool,
        commit_steps: bool = True,
    ) -> None:
        assert session.conn is not None
        self.session = session.conn
        self.functions = functions
        self.gives = gives
        self.autocommit = autocommit
        self.commit_steps = commit_steps
        self.run = FunctionRun(session.actor)
        self.lasting = False
        """Whether the function sent a statement that may outlast its transaction."""
        baseline(self.session)
        self.conn: Any = None
        self.changed: tuple[tuple[str, ...], tuple[str, ...]] | None = None
        """(saved, sent) when a replay's function no longer sends the statements saved."""
        weakref.finalize(self, _stop, self.run)

    def start(
        self,
        role: str,
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
        saved: tuple[str, ...] | None = None,
    ) -> None:
        """Start the role's function with these arguments on a gated connection
        (``saved``: the statements a replay's run sent, racesim.code.commits.apart)."""
        fn = self.functions[role]
        if inspect.iscoroutinefunction(fn):
            conn = gated_async(self.session, self.run, self.autocommit, self.commit_steps)
            conn._racesim_saved = saved  # type: ignore[attr-defined]
            self.conn = conn
            self._watch_lasting()
            self.run.start(lambda: asyncio.run(fn(conn, *args, **kwargs)))
            return
        sync = gated(self.session, self.run, self.autocommit, self.commit_steps)
        sync._racesim_saved = saved  # type: ignore[attr-defined]
        self.conn = sync
        self._watch_lasting()
        given: Any = sync if self.gives == "connection" else _engine(sync)
        self.run.start(lambda: fn(given, *args, **kwargs))

    def _watch_lasting(self) -> None:
        sends = self.run.on_release

        def released(statement: Statement) -> None:
            sends(statement)
            if not self.lasting and lasting(statement.sql):
                self.lasting = True

        self.run.on_release = released

    def __getattr__(self, name: str) -> Callable[[], Any]:
        if STATEMENT.fullmatch(name):
            return self.run.step
        raise AttributeError(name)

    def stop(self) -> None:
        """No more statements from this run; the session gets its handlers back."""
        _stop(self.run)
        if self.conn is not None:
            restore_handlers(self.conn, self.session)
        if self.lasting:
            tidy(self.session)
            self.lasting = False


def _stop(run: FunctionRun) -> None:
    run.stop()


def _engine(conn: psycopg.Connection[Any]) -> Any:
    """A SQLAlchemy engine whose one connection is ``conn`` (set up before it is gated)."""
    import sqlalchemy
    from sqlalchemy.pool import StaticPool

    run, conn._racesim_run = conn._racesim_run, None  # type: ignore[attr-defined]
    engine = sqlalchemy.create_engine(
        "postgresql+psycopg://", creator=lambda: conn, poolclass=StaticPool
    )
    with engine.connect():  # the dialect's first-connect queries, not the function's
        pass
    conn._racesim_run = run  # type: ignore[attr-defined]
    return engine


def answer(done: Done | None) -> str:
    """The run's answer: ``repr`` of what the function returned, or ``raised ...``."""
    if done is None:
        return "stopped"
    if done.ok:
        return repr(done.value)
    if isinstance(done.value, Stopped):
        return "stopped"
    text = str(done.value).strip().splitlines()[0] if str(done.value).strip() else ""
    return f"raised {type(done.value).__name__}" + (f": {text}" if text else "")


def program(role: str, opened: dict[str, FunctionStore]) -> Callable[[RunContext], ProgramRun]:
    """The program of ``role``: the store just opened for the actor runs its function."""

    def make(ctx: RunContext) -> ProgramRun:
        store = opened.pop(ctx.actor)
        args = tuple(ctx.options.get("args", ()))
        kwargs = dict(ctx.options.get("kwargs", {}))
        saved = ctx.options.get("statements")
        store.start(role, args, kwargs, None if saved is None else tuple(saved))
        run = store.run
        sent: list[str] = []
        while (statement := run.next_statement()) is not None:
            sent.append(statement.sql)
            if saved is not None and sent != list(saved[: len(sent)]):
                store.changed = (tuple(saved), tuple(sent))
                yield Call(f"s{len(sent)}", ("",), kind="work")  # checks.problems stops here
                return "stopped"
            with contextlib.suppress(psycopg.Error):  # the function has the error too
                yield StatementCall(
                    f"s{len(sent)}",
                    (statement.source,),
                    sql=statement.sql,
                    trail=tuple(sent),
                )
        stopped = run.done is not None and isinstance(run.done.value, Stopped)
        if run.done is not None and not stopped:
            _open_transaction(store, ctx.actor)
        if saved is not None and not stopped and len(sent) < len(saved):
            store.changed = (tuple(saved), tuple(sent))
            yield Call(f"s{len(sent) + 1}", ("",), kind="work")
        elif not sent and not stopped:
            # It sent nothing: one step that sends nothing, after which the system's
            # watch (checks.problems) stops everything with the input error.
            yield Call("s1", ("",), kind="work")
        return answer(run.done)

    return make


def _open_transaction(store: FunctionStore, actor: str) -> None:
    """Say once that a function ended inside a transaction of its own making."""
    if store.session.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
        return
    note(
        store.run.told,
        "open transaction",
        f"actor {actor}'s function ended with its transaction open (no commit or"
        " rollback): its locks stay held until the run ends, so an actor waiting on them"
        " never finishes; fix: end the transaction in the function (conn.commit(), or"
        " with conn.transaction():), or race it with autocommit=True",
    )


def record(actors: tuple[Actor, ...], events: tuple[Event, ...]) -> tuple[Actor, ...]:
    """The actors with the statements each sent, in order (``statements``), for a replay
    to check that the code still sends them."""
    sent: dict[str, list[str]] = {a.name: [] for a in actors}
    for event in events:
        if event.kind in ("step", "wait") and event.sql and event.actor in sent:
            sent[event.actor].append(event.sql)
    return tuple(replace(a, options={**a.options, "statements": sent[a.name]}) for a in actors)
