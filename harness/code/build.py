"""A ``System`` from the functions a project already has.

``system(...)`` takes plain functions (each taking a connection first), the
arguments each actor calls them with, and invariants written as SQL queries that
return rows when broken (run read-only) or as Python callables; the result is an
ordinary ``System``: every strategy, shrinking, saving, replay and report applies.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

import psycopg

from racesim.code.checks import Checks, Invariant, problems, read_invariants, show, watch
from racesim.code.reduce import Footprints
from racesim.code.runs import NAMES, FunctionStore, program, record
from racesim.errors import InputError
from racesim.footprints import Schema, of_sql, schema_of
from racesim.model.plan import Actor
from racesim.system import Config, Option, Program, Session, System, Variant

__all__ = ["Invocation", "call", "system"]

MAIN = "main"
"""The role of a variant given as one function."""


@dataclass(frozen=True)
class Invocation:
    """One actor's call: which role's function, with which arguments."""

    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    role: str = MAIN

    def of(self, role: str) -> Invocation:
        """The same arguments, given to the function of ``role``."""
        return Invocation(self.args, self.kwargs, role)


def call(*args: Any, **kwargs: Any) -> Invocation:
    """An actor calling the variant's function with these arguments (after the connection):
    ``call(1, 2, 30)`` runs ``transfer(conn, 1, 2, 30)``; ``call(...).of("audit")`` runs
    the variant's ``audit`` function instead."""
    return Invocation(args, kwargs)


Functions = Callable[..., Any] | Mapping[str, Callable[..., Any]]


def system(
    name: str,
    *,
    variants: Mapping[str, Functions],
    actors: Mapping[str, Invocation],
    invariants: Mapping[str, str | Callable[..., Any]],
    schema: str = "",
    fresh: str = "",
    watch_sql: str = "",
    configs: Mapping[str, Mapping[str, Invocation]] | None = None,
    autocommit: bool = True,
    gives: str = "connection",
    commit_steps: bool = True,
) -> System:
    """The system racing ``variants`` (name -> function, or name -> {role: function}).

    ``schema`` makes the tables (once); ``fresh`` puts the data back before each run
    (it also runs after ``schema``). ``actors`` is the configuration every strategy
    runs (``configs`` adds named ones). An invariant is a query returning rows when
    broken, or ``check(conn, results)`` raising AssertionError when broken, run once
    every actor has finished (``results``: actor -> return value or exception; a check
    reading an actor the run lacks, as shrinking drops actors, does not apply to it).
    Functions get a psycopg connection (``autocommit`` as given), or a SQLAlchemy
    engine with ``gives="engine"``; ``async def`` functions get an AsyncConnection.
    An autocommit ``INSERT``, ``UPDATE``, ``DELETE`` or ``MERGE`` runs as two steps, the
    statement and then its ``COMMIT`` (racesim.code.commits); ``commit_steps=False``
    runs it to its commit in one.
    """
    roles = {v: _roles(name, v, fns) for v, fns in variants.items()}
    if not roles:
        raise InputError(f"system {name!r}: no variants; give variants={{'name': function}}")
    if gives not in ("connection", "engine"):
        raise InputError(f"system {name!r}: gives must be 'connection' or 'engine', got {gives!r}")
    checks = read_invariants(name, invariants)
    if gives == "engine":  # SQLAlchemy begins and commits itself, as on any DBAPI connection
        autocommit = False
    table = {"default": actors, **(configs or {})}
    made = {c: _actors(name, c, roles, table[c]) for c in table}
    opened: dict[str, FunctionStore] = {}
    told: set[str] = set()  # the notes given once (racesim.code.foreign)
    live: dict[str, FunctionStore] = {}

    def start_over(conn: psycopg.Connection[Any]) -> None:
        problems(live)
        for store in live.values():
            store.stop()
        live.clear()
        opened.clear()

    def reset(conn: psycopg.Connection[Any]) -> None:
        start_over(conn)
        _setup(name, conn, "fresh", fresh)

    def prepare(conn: psycopg.Connection[Any]) -> None:
        _setup(name, conn, "schema", schema)
        _setup(name, conn, "fresh", fresh)

    def variant(v: str) -> Variant:
        def open_(session: Session) -> FunctionStore:
            store = FunctionStore(session, roles[v], gives, autocommit, commit_steps)
            store.run.told = told
            opened[session.actor] = live[session.actor] = store
            return store

        return Variant(
            v,
            open=open_,
            watch=watch(checks, watch_sql, live, told),
            prepare=start_over,
            reset=reset,
        )

    tables = schema_of(";\n".join(t for t in (schema, fresh) if t)) if schema else None
    all_roles = sorted({r for fns in roles.values() for r in fns})
    options = {
        "args": Option(lambda x: isinstance(x, list), "a list of the call's arguments"),
        "kwargs": Option(lambda x: isinstance(x, dict), "a table of keyword arguments"),
        "statements": Option(
            lambda x: isinstance(x, list) and all(isinstance(s, str) for s in x),
            "the list of statements the run sent, as racesim saved it",
        ),
    }
    return System(
        name=name,
        variants=tuple(variant(v) for v in roles),
        programs={r: Program(program(r, opened), calls=NAMES, options=options) for r in all_roles},
        invariants=Checks,
        invariant_names=tuple(c.name for c in checks),
        prepare=prepare,
        configs={c: Config(c, actors=a, clock=False) for c, a in made.items()},
        defaults={s: "default" for s in ("hypothesis", "exhaustive", "pct")},
        show=show(),
        sticky=NAMES,
        saved_actors=record,
        footprint_of=Footprints(tables).of,
        invariant_reads=_reads(checks, watch_sql, tables),
        check_actors=lambda given: _fit(roles, given),
    )


def _setup(system_name: str, conn: psycopg.Connection[Any], what: str, text: str) -> None:
    """Run the system's ``schema`` or ``fresh`` SQL; its error is the user's input error."""
    if not text:
        return
    try:
        conn.execute(text)
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise InputError(
            f"system {system_name!r}: its {what} SQL fails ({type(exc).__name__}: {first});"
            f" fix {what}=..."
        ) from None


def _roles(system_name: str, variant: str, fns: Functions) -> dict[str, Callable[..., Any]]:
    found = dict(fns) if isinstance(fns, Mapping) else {MAIN: fns}
    for role, fn in found.items():
        if not callable(fn):
            raise InputError(
                f"system {system_name!r}: variant {variant!r} role {role!r} is a"
                f" {type(fn).__name__}, not a function; give the function itself"
            )
    return found


def _actors(
    system_name: str,
    config: str,
    roles: Mapping[str, Mapping[str, Callable[..., Any]]],
    table: Mapping[str, Invocation],
) -> tuple[Actor, ...]:
    out = []
    for actor, inv in table.items():
        if not isinstance(inv, Invocation):
            raise InputError(
                f"system {system_name!r}: actor {actor!r} is a {type(inv).__name__};"
                " write racesim.code.call(arg, ...)"
            )
        for value in (*inv.args, *inv.kwargs.values()):
            if not _plain(value):
                raise InputError(
                    f"system {system_name!r}: actor {actor!r} argument {value!r} cannot be"
                    " saved in a scenario; use numbers, strings, booleans, dates, lists or dicts"
                )
        options: dict[str, Any] = {"args": list(inv.args)}
        if inv.kwargs:
            options["kwargs"] = dict(inv.kwargs)
        out.append(Actor(actor, inv.role, options))
    problems = _fit(roles, tuple(out))
    if problems:
        raise InputError(f"system {system_name!r}: actor {problems[0][0].name!r}: {problems[0][1]}")
    return tuple(out)


def _plain(value: Any) -> bool:
    if isinstance(value, bool | int | float | str | date | datetime | time):
        return True
    if isinstance(value, list | tuple):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False


def _fit(
    roles: Mapping[str, Mapping[str, Callable[..., Any]]], actors: tuple[Actor, ...]
) -> list[tuple[Actor, str]]:
    """Each actor's arguments against every variant's function of its role."""
    problems = []
    for actor in actors:
        args = actor.options.get("args", [])
        kwargs = actor.options.get("kwargs", {})
        for variant, fns in roles.items():
            fn = fns.get(actor.program)
            if fn is None:
                problems.append((actor, f"variant {variant!r} has no function {actor.program!r}"))
                break
            try:
                inspect.signature(fn).bind(None, *args, **kwargs)
            except TypeError as exc:
                where = _where(fn)
                problems.append(
                    (
                        actor,
                        f"{fn.__name__}{inspect.signature(fn)} ({where}) cannot take the"
                        f" connection and {tuple(args)!r}"
                        + (f" {kwargs!r}" if kwargs else "")
                        + f": {exc}; fix the arguments",
                    )
                )
                break
    return problems


def _where(fn: Callable[..., Any]) -> str:
    try:
        return f"{inspect.getsourcefile(fn)}:{inspect.getsourcelines(fn)[1]}"
    except (OSError, TypeError):
        return getattr(fn, "__module__", "?")


def _reads(
    checks: tuple[Invariant, ...], watch_sql: str, tables: Schema | None
) -> frozenset[str] | None:
    """What the watched rows and the invariants read; None (everything) when a Python
    check is among them or a query's footprint is unknown."""
    reads: set[str] = set()
    for sql in [watch_sql] + [c.sql for c in checks]:
        if not sql:
            continue
        found = of_sql(sql, tables)
        if found is None:
            return None
        reads |= found.reads | found.writes
    if any(c.check is not None for c in checks):
        return None
    return frozenset(reads)
