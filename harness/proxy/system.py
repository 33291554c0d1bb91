"""Commands as a System: each program is a command line in any language, racing
through racesim's proxy. Named ``commands:FILE.toml``; the file says::

    name = "go-marker"
    setup = "CREATE TABLE ..."        # once per database (SQL)
    reset = "UPDATE ..."              # between runs (SQL)
    watch = "SELECT ..."              # the watched state (first row), optional
    timeout = 10                      # seconds a command may take to connect or go on

    [invariants]                      # queries returning no rows while each holds
    no-foreign-clear = "SELECT ..."

    [stores.legacy]                   # the variants; {store} in commands and env is the
                                      # variant's name, {actor} the actor's
    env = { MARKER = "legacy" }

    [programs.cron]                   # argv, run in the file's folder
    command = ["bin/cron", "--store", "{store}"]
    env = { COLLECT_MS = "0" }

    [actors]                          # the runs exploration races (actor = program)
    cron = "cron"
    user = "refresh"

The exhaustive search's reduction applies when racesim can read the setup's schema
(plain tables: no triggers, rules, foreign keys; ``racesim.footprints.schema_of``):
each round's SQL is judged in its connection's transaction, and the commands are
taken to share state only through the database.

A run of a program is one call per protocol round, named by the keyword its SQL
starts with (``select``, ``update``, ``begin``...; ``round`` for none), each carrying
the round's SQL into the record; the run's answer is the command's exit status and the
last line of its output.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg

from racesim.checks.invariants import FirstBroken
from racesim.code.reduce import Footprints, StatementCall
from racesim.errors import InputError
from racesim.footprints import Schema, of_sql, schema_of
from racesim.model.history import Event
from racesim.model.plan import Actor
from racesim.model.show import Show
from racesim.proxy.command import CALL, VERBS, Command, CommandStore, verb
from racesim.system import (
    Config,
    Option,
    Program,
    ProgramRun,
    RunContext,
    Session,
    System,
    Variant,
)

PREFIX = "commands:"
ROWS_SHOWN = 5
TOP_KEYS = frozenset(
    {
        "name",
        "description",
        "setup",
        "reset",
        "watch",
        "timeout",
        "listen",
        "invariants",
        "stores",
        "programs",
        "actors",
    }
)


def _statements(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


STATEMENTS = Option(
    _statements,
    'a list of the SQL of each round, as a saved counterexample writes it: statements = ["..."]',
)
"""The SQL each round of a saved run sent: a replay checks the command still sends it."""


def record(actors: tuple[Actor, ...], events: tuple[Event, ...]) -> tuple[Actor, ...]:
    """The actors with the SQL of each round they sent (``statements``), for a replay
    to check that the commands still send it."""
    sent: dict[str, list[str]] = {a.name: [] for a in actors}
    for event in events:
        if event.kind in ("step", "wait") and event.actor in sent:
            sent[event.actor].append(event.sql)
    return tuple(replace(a, options={**a.options, "statements": sent[a.name]}) for a in actors)


def _reads(queries: list[str], schema: Schema) -> frozenset[str] | None:
    """What the watched state and the invariants read (None: unknown, so everything)."""
    reads: set[str] = set()
    for sql in queries:
        found = of_sql(sql, schema)
        if found is None:
            return None
        reads |= found.reads | found.writes
    return frozenset(reads)


def _program(stores: dict[str, CommandStore]) -> Program:
    def make(ctx: RunContext) -> ProgramRun:
        store = stores[ctx.actor]
        saved = ctx.options.get("statements")
        store.saved = tuple(saved) if saved is not None else None
        while (sql := store.next_sql()) is not None:
            try:
                yield StatementCall(verb(sql), sql=sql, trail=store.trail())
            except Exception as exc:
                if getattr(exc, "sqlstate", None) is None:
                    raise  # not a statement's error: the run ends with it
        assert store.exit is not None
        return str(store.exit)

    return Program(make, calls=VERBS | {CALL}, options={"statements": STATEMENTS})


class _Checks(FirstBroken):
    """A violation the first time an invariant's query returns rows."""

    def broken(self, state: Any) -> Iterator[tuple[str, str]]:
        for name, rows in state[1] if state else ():
            yield name, f"the query of {name} returns {'; '.join(rows)}"


def _watch(
    watch: str | None, invariants: Mapping[str, str]
) -> Callable[[psycopg.Connection[Any]], Any]:
    def read(conn: psycopg.Connection[Any]) -> Any:
        seen = None
        if watch:
            row = conn.execute(watch).fetchone()
            seen = None if row is None else tuple(row)
        broken = []
        for name, query in invariants.items():
            rows = conn.execute(query).fetchmany(ROWS_SHOWN)
            if rows:
                shown = tuple("|".join("" if v is None else str(v) for v in r) for r in rows)
                broken.append((name, shown))
        return (seen, tuple(broken))

    return read


def _state(state: Any) -> str:
    if state is None:
        return ""
    seen, broken = state
    text = (
        "" if seen is None else "state: " + ", ".join("null" if v is None else str(v) for v in seen)
    )
    if broken:
        text += (
            ("; " if text else "")
            + "broken: "
            + "; ".join(f"{name} ({', '.join(rows)})" for name, rows in broken)
        )
    return text


SHOW = Show(
    state=_state,
    state_json=lambda state: (
        None
        if state is None
        else {
            "state": None
            if state[0] is None
            else [None if v is None else str(v) for v in state[0]],
            "broken": {n: list(r) for n, r in state[1]},
        }
    ),
)


def _need(cond: bool, path: Path, key: str, want: str) -> None:
    if not cond:
        raise InputError(f"{path}: {key}: expected {want}")


def _strings(value: Any) -> bool:
    return isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    )


def load(path: Path, name: str) -> System:
    """The System a commands file describes (InputError naming the key otherwise)."""
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not TOML ({exc})") from None
    unknown = sorted(set(data) - TOP_KEYS)
    _need(not unknown, path, ", ".join(unknown), f"only {', '.join(sorted(TOP_KEYS))}")
    for key in ("setup", "reset", "watch", "name", "description"):
        _need(isinstance(data.get(key, ""), str), path, key, "a string")
    timeout = data.get("timeout", 10)
    _need(
        isinstance(timeout, int | float) and 0 < timeout <= 600,
        path,
        "timeout",
        "seconds between 0 and 600",
    )
    listen = data.get("listen", "unix")
    _need(listen in ("unix", "tcp"), path, "listen", '"unix" or "tcp"')
    invariants = data.get("invariants", {})
    _need(
        _strings(invariants) and bool(invariants),
        path,
        "invariants",
        'a table of name = "SELECT ..." (rows while broken)',
    )
    folder = str(path.parent)
    programs: dict[str, Command] = {}
    raw_programs = data.get("programs", {})
    _need(
        isinstance(raw_programs, dict) and bool(raw_programs),
        path,
        "programs",
        "[programs.NAME] tables with command = [...]",
    )
    for prog, spec in raw_programs.items():
        where = f"programs.{prog}"
        _need(
            isinstance(spec, dict) and set(spec) <= {"command", "env"},
            path,
            where,
            "command = [...] and optional env = {...}",
        )
        argv = spec.get("command")
        _need(
            isinstance(argv, list) and bool(argv) and all(isinstance(a, str) for a in argv),
            path,
            f"{where}.command",
            "a non-empty list of strings",
        )
        env = spec.get("env", {})
        _need(_strings(env), path, f"{where}.env", "a table of strings")
        first = argv[0]
        if "/" in first and not first.startswith("/"):
            first = os.path.abspath(path.parent / first)  # symlinks kept: a venv's python
        programs[prog] = Command((first, *argv[1:]), env, folder, f"{path}: {where}")
    raw_stores = data.get("stores", {"default": {}})
    _need(isinstance(raw_stores, dict) and bool(raw_stores), path, "stores", "[stores.NAME] tables")
    store_env: dict[str, Mapping[str, str]] = {}
    for store, spec in raw_stores.items():
        _need(
            isinstance(spec, dict) and set(spec) <= {"env"} and _strings(spec.get("env", {})),
            path,
            f"stores.{store}",
            "env = {...} of strings",
        )
        store_env[store] = spec.get("env", {})
    actors_raw = data.get("actors", {})
    _need(
        _strings(actors_raw) and all(p in programs for p in actors_raw.values()),
        path,
        "actors",
        f"a table of actor = program, programs being {', '.join(programs)}",
    )
    actors = tuple(Actor(a, p) for a, p in actors_raw.items())

    stores: dict[str, CommandStore] = {}
    """The open run of each actor, for its program (a run opens its store first)."""

    def opener(store: str) -> Callable[[Session], CommandStore]:
        def open_(session: Session) -> CommandStore:
            made = CommandStore(
                session,
                programs[session.program],
                store,
                store_env[store],
                float(timeout),
                tcp=listen == "tcp",
            )
            stores[session.actor] = made
            return made

        return open_

    def prepare(conn: psycopg.Connection[Any]) -> None:
        if data.get("setup"):
            conn.execute(data["setup"])

    def reset(conn: psycopg.Connection[Any]) -> None:
        if data.get("reset"):
            conn.execute(data["reset"])

    schema = schema_of(data["setup"]) if data.get("setup") else None
    queries = [q for q in (data.get("watch", ""), *invariants.values()) if q]
    system = System(
        name=name,
        variants=tuple(
            Variant(s, open=opener(s), watch=_watch(data.get("watch"), invariants), reset=reset)
            for s in raw_stores
        ),
        programs={p: _program(stores) for p in programs},
        invariants=_Checks,
        invariant_names=tuple(invariants),
        prepare=prepare,
        configs={"actors": Config("the actors of the commands file", actors=actors, clock=False)}
        if actors
        else {},
        defaults={s: "actors" for s in ("hypothesis", "exhaustive", "pct")} if actors else {},
        show=SHOW,
        saved_actors=record,
        footprint_of=Footprints(schema).of if schema is not None else None,
        invariant_reads=_reads(queries, schema) if schema is not None else None,
    )
    return system


_MADE: dict[str, System] = {}


def made(text: str) -> System | None:
    """The system of ``commands:FILE.toml`` if it has been made already (None otherwise)."""
    return _MADE.get(f"{PREFIX}{Path(text.removeprefix(PREFIX)).resolve()}")


def from_name(text: str) -> System:
    """The system ``commands:FILE.toml`` names (made once per file)."""
    rest = text.removeprefix(PREFIX)
    path = Path(rest).resolve()
    name = f"{PREFIX}{path}"
    found = _MADE.get(name)
    if found is None:
        if not path.is_file():
            raise InputError(f"system {text[:80]!r}: no file {rest!r}; fix: commands:FILE.toml")
        found = _MADE[name] = load(path, name)
    return found
