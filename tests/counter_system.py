"""The counter of ``racesim.system``'s docstring, as a real system the engine and
explorer tests run on.

A run of ``bump`` reads the counter and writes back what it read plus one, in two
steps. On the ``naive`` store the write sets the value it was given, so two runs
that both read before either writes lose an update. On the ``atomic`` store the
write is ``UPDATE counter SET n = n + 1`` (the value the program computed is not
trusted), so every bump counts in every interleaving. The ``memory`` store is
the naive one in memory (no server): the same lost update, for the tests that run
without PostgreSQL. ``no-lost-update`` checks that the counter is never below the
number of writes that succeeded.
"""

from __future__ import annotations

from typing import Any

import psycopg

from racesim.model.history import Event
from racesim.model.plan import Actor
from racesim.model.violation import Violation
from racesim.system import (
    Call,
    Config,
    Footprint,
    Program,
    ProgramRun,
    RunContext,
    RunKind,
    Session,
    System,
    Variant,
    sql_reset,
    watch_sql,
)


def bump(ctx: RunContext) -> ProgramRun:
    n = yield Call("read")
    yield Call("write", (n + 1,))
    return "done"


class Naive:
    """Writes back the value the program computed from its read."""

    def __init__(self, session: Session) -> None:
        assert session.conn is not None
        self.conn: psycopg.Connection[Any] = session.conn

    def read(self) -> int:
        row = self.conn.execute("SELECT n FROM counter").fetchone()
        assert row is not None
        return int(row[0])

    def write(self, n: int) -> None:
        self.conn.execute("UPDATE counter SET n = %s", (n,))


class Atomic(Naive):
    """Increments in the database: the program's value is ignored."""

    def write(self, n: int) -> None:
        self.conn.execute("UPDATE counter SET n = n + 1")


class Memory:
    """The naive store on a dict the runs of one plan share."""

    def __init__(self, session: Session) -> None:
        self.world: dict[str, int] = session.world

    def read(self) -> int:
        return self.world["n"]

    def write(self, n: int) -> None:
        self.world["n"] = n


class NoLostUpdate:
    def __init__(self, actors: tuple[Actor, ...]) -> None:
        self.done = 0

    def feed(self, event: Event) -> list[Violation]:
        if event.call == "write" and event.error is None and event.kind != "wait":
            self.done += 1
        if event.state is not None and event.state < self.done:
            return [
                Violation(
                    "no-lost-update",
                    event.seq,
                    event.label,
                    event.actor,
                    (event.actor,),
                    f"{self.done} writes, counter {event.state}",
                )
            ]
        return []

    def note(self) -> str:
        return ""


def _counter(row: tuple[Any, ...] | None) -> int:
    assert row is not None
    return int(row[0])


def _variant(name: str, store: type[Naive]) -> Variant:
    return Variant(
        name,
        open=store,
        reset=sql_reset("UPDATE counter SET n = 0"),
        watch=watch_sql("SELECT n FROM counter", _counter),
    )


COUNTER = System(
    name="counter",
    prepare=lambda conn: (
        conn.execute(
            "CREATE TABLE IF NOT EXISTS counter (n int NOT NULL); INSERT INTO counter VALUES (0)"
        )
        and None
    ),
    variants=(
        _variant("naive", Naive),
        _variant("atomic", Atomic),
        Variant(
            "memory",
            open=Memory,
            watch=lambda world: world["n"],
            database=False,
            world=lambda now: {"n": 0},
        ),
    ),
    programs={"bump": Program(bump, calls=frozenset({"read", "write"}))},
    invariants=NoLostUpdate,
    invariant_names=("no-lost-update",),
    footprints={
        "read": Footprint(reads=frozenset({"counter"})),
        "write": Footprint(writes=frozenset({"counter"})),
    },
    run_kinds=(RunKind("bump", "bump", prefix="bumper"),),
    configs={
        "two": Config(
            "two bumps", actors=(Actor("b1", "bump", {}), Actor("b2", "bump", {})), clock=False
        ),
        "three": Config(
            "three bumps",
            actors=(Actor("b1", "bump", {}), Actor("b2", "bump", {}), Actor("b3", "bump", {})),
            clock=False,
        ),
    },
    defaults={"exhaustive": "two", "pct": "two", "hypothesis": "two"},
)
