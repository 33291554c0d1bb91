"""Small user systems whose calls hold a transaction open across steps.

``LEDGER``: a counter bumped in a transaction of four steps (``BEGIN``, read,
write back, ``COMMIT``), which loses an update under READ COMMITTED; and
accounts moved by a transfer of four steps (``BEGIN``, debit, credit,
``COMMIT``), two of which in opposite directions deadlock. The ``db`` store
runs each statement in a store method (``begin`` is ``conn.execute("BEGIN")``);
the programs of the ``sql`` kind send them as fixed statements. Either way a
run stopped between ``BEGIN`` and ``COMMIT`` leaves its session in a
transaction that holds row locks.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import psycopg

from racesim.model.history import Event
from racesim.model.plan import Actor
from racesim.model.violation import Violation
from racesim.system import (
    Call,
    Config,
    Footprint,
    Option,
    Program,
    RunContext,
    Session,
    System,
    Variant,
    sql_reset,
    watch_sql,
)

SCHEMA = (
    "CREATE TABLE counter (n INT NOT NULL); INSERT INTO counter VALUES (0);"
    " CREATE TABLE accounts (id TEXT PRIMARY KEY, bal INT NOT NULL);"
    " INSERT INTO accounts VALUES ('a', 10), ('b', 10)"
)
RESET = "UPDATE counter SET n = 0; UPDATE accounts SET bal = 10"
WATCH = "SELECT (SELECT n FROM counter), (SELECT sum(bal) FROM accounts)"


class Store:
    """Each method is one statement on the run's session (no transaction of its own)."""

    def __init__(self, session: Session) -> None:
        assert session.conn is not None
        self.conn: psycopg.Connection[Any] = session.conn

    def begin(self) -> None:
        self.conn.execute("BEGIN")

    def commit(self) -> None:
        self.conn.execute("COMMIT")

    def read(self) -> int:
        row = self.conn.execute("SELECT n FROM counter").fetchone()
        assert row is not None
        return int(row[0])

    def write(self, n: int) -> None:
        self.conn.execute("UPDATE counter SET n = %s", (n,))

    def debit(self, account: str) -> None:
        self.conn.execute("UPDATE accounts SET bal = bal - 1 WHERE id = %s", (account,))

    def credit(self, account: str) -> None:
        self.conn.execute("UPDATE accounts SET bal = bal + 1 WHERE id = %s", (account,))


def bump(ctx: RunContext) -> Generator[Call, Any, str]:
    yield Call("begin")
    n = yield Call("read")
    yield Call("write", (n + 1,))
    yield Call("commit")
    return "bumped"


def transfer(ctx: RunContext) -> Generator[Call, Any, str]:
    source, target = ("a", "b") if ctx.options.get("way", "ab") == "ab" else ("b", "a")
    yield Call("begin")
    try:
        yield Call("debit", (source,))
        yield Call("credit", (target,))
    except psycopg.errors.DeadlockDetected:
        yield Call("commit")  # ends the aborted transaction (PostgreSQL rolls it back)
        return "deadlocked"
    yield Call("commit")
    return "moved"


def sql_bump(ctx: RunContext) -> Generator[Call, Any, str]:
    yield Call("begin", kind="sql", sql="BEGIN")
    seen = yield Call("read", kind="sql", sql="SELECT n FROM counter")
    n = int(str(seen).rsplit("=", 1)[1])
    yield Call("write", kind="sql", sql=f"UPDATE counter SET n = {n + 1}")
    yield Call("commit", kind="sql", sql="COMMIT")
    return "bumped"


class Checks:
    """``no-lost-update``: every acknowledged bump shows in the counter;
    ``no-deadlock``: no step ends in a deadlock."""

    def __init__(self, actors: tuple[Actor, ...]) -> None:
        self.open: set[str] = set()
        self.wrote: set[str] = set()
        self.bumps = 0
        self.broken: set[str] = set()

    def feed(self, event: Event) -> list[Violation]:
        found: list[Violation] = []
        if event.call == "begin":
            self.wrote.discard(event.actor)
        if event.call == "write" and event.error is None and event.kind != "wait":
            self.wrote.add(event.actor)
        if event.call == "commit" and event.error is None and event.actor in self.wrote:
            self.bumps += 1
            self.wrote.discard(event.actor)
        if event.sqlstate == "40P01" and "no-deadlock" not in self.broken:
            self.broken.add("no-deadlock")
            found.append(
                Violation(
                    "no-deadlock",
                    event.seq,
                    event.label,
                    event.actor,
                    (event.actor,),
                    f"{event.actor}'s {event.call} was chosen as a deadlock victim",
                )
            )
        state = event.state
        if state is not None and state[0] < self.bumps and "no-lost-update" not in self.broken:
            self.broken.add("no-lost-update")
            found.append(
                Violation(
                    "no-lost-update",
                    event.seq,
                    event.label,
                    event.actor,
                    (event.actor,),
                    f"{self.bumps} bumps committed but the counter is {state[0]}",
                )
            )
        return found

    def note(self) -> str:
        return ""


def _actors(program: str, *names: str, **options: Any) -> tuple[Actor, ...]:
    return tuple(Actor(n, program, dict(options)) for n in names)


PROGRAMS = {
    "bump": Program(bump, calls=frozenset({"begin", "read", "write", "commit"})),
    "sql-bump": Program(sql_bump, calls=frozenset({"begin", "read", "write", "commit"})),
    "transfer": Program(
        transfer,
        calls=frozenset({"begin", "debit", "credit", "commit"}),
        options={"way": Option(lambda v: v in ("ab", "ba"), 'use "ab" or "ba"')},
    ),
}
CONFIGS = {
    "bumps": Config("three bumps", actors=_actors("bump", "b1", "b2", "b3"), clock=False),
    "sql-bumps": Config("three bumps", actors=_actors("sql-bump", "b1", "b2", "b3"), clock=False),
    "transfers": Config(
        "opposite transfers and a bump",
        actors=(
            Actor("ab", "transfer", {"way": "ab"}),
            Actor("ba", "transfer", {"way": "ba"}),
            Actor("b1", "bump"),
        ),
        clock=False,
    ),
}

LEDGER = System(
    name="ledger",
    prepare=lambda conn: conn.execute(SCHEMA) and None,
    variants=(Variant("db", open=Store, watch=watch_sql(WATCH), reset=sql_reset(RESET)),),
    programs=PROGRAMS,
    invariants=Checks,
    invariant_names=("no-lost-update", "no-deadlock"),
    footprints={
        "begin": Footprint(),
        "read": Footprint(reads=frozenset({"counter"})),
        "write": Footprint(writes=frozenset({"counter"})),
        "commit": Footprint(writes=frozenset({"counter", "accounts"})),
        "debit": Footprint(writes=frozenset({"accounts"})),
        "credit": Footprint(writes=frozenset({"accounts"})),
    },
    configs=CONFIGS,
    defaults={"hypothesis": "bumps", "exhaustive": "bumps", "pct": "bumps"},
)
