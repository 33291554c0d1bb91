"""Invariants of a code system: SQL queries that return rows when broken, and Python
checks of the actors' results, read by the monitor after every event.

The watched state is ``(rows, broken)``: the rows of the system's ``watch_sql`` (if
any) and each broken invariant with what shows it. A query runs in a read-only
transaction after every event; a Python check runs (read-only too) once every
actor's function has ended, given the actors' results.
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import psycopg

from racesim.checks.invariants import FirstBroken
from racesim.code.foreign import note
from racesim.code.gate import PYTHON_BOUND, Stopped
from racesim.code.statements import own_file as user_frame_of
from racesim.errors import InputError
from racesim.model.show import Show

if TYPE_CHECKING:
    from racesim.code.runs import FunctionStore

__all__ = ["Checks", "Invariant", "problems", "read_invariants", "run_query", "show", "watch"]

ROWS_SHOWN = 5

Broken = tuple[tuple[str, tuple[str, ...]], ...]
Watched = tuple[tuple[str, ...], Broken]


@dataclass(frozen=True)
class Invariant:
    name: str
    sql: str = ""
    check: Callable[..., Any] | None = None


def read_invariants(
    system: str, given: Mapping[str, str | Callable[..., Any]]
) -> tuple[Invariant, ...]:
    """The invariants as given: a query, or a callable; anything else is bad input."""
    out = []
    for name, value in given.items():
        if isinstance(value, str) and value.strip():
            out.append(Invariant(name, sql=value))
        elif callable(value):
            out.append(Invariant(name, check=value))
        else:
            raise InputError(
                f"system {system!r}: invariant {name!r} is a {type(value).__name__}, not a query"
                " or a function; write a SELECT returning rows when it is broken, or"
                " check(conn, results) raising AssertionError"
            )
    return tuple(out)


def _row(row: tuple[Any, ...]) -> str:
    return "|".join("null" if v is None else str(v) for v in row)


def run_query(conn: psycopg.Connection[Any], sql: str) -> tuple[str, ...]:
    """The first rows ``sql`` returns (run inside the watch's read-only transaction)."""
    cur = conn.execute(sql)
    if cur.description is None:
        raise psycopg.ProgrammingError("the statement returns no rows")
    return tuple(_row(r) for r in cur.fetchmany(ROWS_SHOWN))


FOREIGN = """
SELECT pid, application_name FROM pg_stat_activity
WHERE datname = current_database() AND backend_type = 'client backend'
  AND pid <> pg_backend_pid() AND application_name NOT LIKE 'racesim%'
ORDER BY pid LIMIT 1
"""
"""A session on the run's database that racesim did not open (its are named racesim-*)."""


def foreign(conn: psycopg.Connection[Any], told: set[str]) -> None:
    """Say once (a ``racesim: note:`` line on stderr) that a connection racesim did not
    make uses the database: its statements are not steps, and no schedule orders them."""
    if "foreign" in told:
        return
    row = conn.execute(FOREIGN).fetchone()
    if row is None:
        return
    note(
        told,
        "foreign",
        f"a connection racesim did not make (pid {row[0]}, application_name"
        f" {str(row[1])[:40]!r}) uses the database under test; its statements are not"
        " steps, so no schedule orders them and no lock wait of theirs is seen; fix: send"
        " them on the connection racesim gives the function",
    )


class _Absent(Exception):
    """An invariant asked for the result of an actor the run does not have."""


class Results(dict[str, Any]):
    """The actors' results: a check that reads an actor the run lacks (shrinking drops
    actors) does not apply to that run."""

    def __missing__(self, actor: str) -> Any:
        raise _Absent(actor)


def _results(live: Mapping[str, FunctionStore]) -> Results | None:
    """Each actor's return value (or exception), once every one has ended."""
    out = Results()
    for actor, store in live.items():
        done = store.run.done
        if done is None:
            return None
        out[actor] = done.value
    return out


SHOWN = 80
"""Characters of a statement an error message shows."""


def _listed(statements: tuple[str, ...]) -> str:
    short = [" ".join(s.split()) for s in statements]
    return json.dumps([s if len(s) <= SHOWN else s[: SHOWN - 1] + "…" for s in short])


def problems(live: Mapping[str, FunctionStore]) -> None:
    """InputError for a function that no longer sends the statements a replay saved, or
    that ended without sending any statement."""
    for actor, store in live.items():
        if store.changed is not None:
            saved, sent = store.changed
            raise InputError(
                f"actor {actor} does not send the statements saved with this run (its code"
                " changed since, or what it sends depends on timing); nothing is reported as"
                f" found; saved: {_listed(saved)}; now: {_listed(sent)}"
            )
    for actor, store in live.items():
        slow = store.run.slow
        if slow is not None:
            where = f" ({slow.source})" if slow.source else ""
            raise InputError(
                f"actor {actor}: its function ran for over {PYTHON_BOUND:g}s after its"
                f" statement s{store.run.count}{where} without sending another or returning;"
                " racesim steps a function statement by statement, so what it does between"
                " two statements must be quick; fix the function (no waiting or polling there)"
            )
    for actor, store in live.items():
        done = store.run.done
        if done is None or store.run.count or isinstance(done.value, Stopped):
            continue
        if not done.ok:
            raise InputError(
                f"actor {actor}: its function raised {_raised(done.value)} before sending"
                " any statement; fix the function (or the actor's arguments)"
            )
        outcome = f"returned {done.value!r}"
        raise InputError(
            f"actor {actor}: its function {outcome[:80]} without sending a"
            " statement on the connection racesim gave it; racesim races the statements"
            " sent on that connection, so use it (not a connection of the function's own)"
        )


def _raised(exc: BaseException) -> str:
    """``Type: first line (file:line)``, the line the user's own code raised at."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    text = type(exc).__name__ + (f": {first[:SHOWN]}" if first else "")
    frames = traceback.extract_tb(exc.__traceback__)
    own = [f for f in frames if user_frame_of(f.filename)]
    if own:
        text += f" ({user_frame_of(own[-1].filename)}:{own[-1].lineno})"
    return text


def watch(
    checks: tuple[Invariant, ...],
    watch_sql: str,
    live: Mapping[str, FunctionStore],
    told: set[str] | None = None,
) -> Callable[[Any], Watched]:
    """The watch: the watched rows and the broken invariants after every event; ``told``
    holds the notes the system gave once."""
    given: set[str] = set() if told is None else told

    def read(conn: psycopg.Connection[Any]) -> Watched:
        problems(live)
        results = _results(live)
        try:
            return _read(conn, rows_of=watch_sql, checks=checks, results=results, told=given)
        except InputError:
            # a Python check may have committed the read-only default it ran under
            conn.execute("RESET default_transaction_read_only")
            raise

    return read


def _read(
    conn: psycopg.Connection[Any],
    *,
    rows_of: str,
    checks: tuple[Invariant, ...],
    results: Results | None,
    told: set[str],
) -> Watched:
    broken: list[tuple[str, tuple[str, ...]]] = []
    with conn.transaction(force_rollback=True):
        conn.execute("SET TRANSACTION READ ONLY")
        foreign(conn, told)
        rows = run_query(conn, rows_of) if rows_of else ()
        for check in checks:
            if check.sql:
                found = _query(conn, check)
                if found:
                    broken.append((check.name, (f"the query returns {', '.join(found)}",)))
            elif check.check is not None and results is not None:
                problem = _call(check, conn, results)
                if problem is not None:
                    broken.append((check.name, (problem,)))
    return rows, tuple(broken)


def _query(conn: psycopg.Connection[Any], check: Invariant) -> tuple[str, ...]:
    try:
        return run_query(conn, check.sql)
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise InputError(
            f"invariant {check.name!r} is not a read-only query ({type(exc).__name__}:"
            f" {first}); write a SELECT that returns rows when the invariant is broken"
        ) from None


def _call(check: Invariant, conn: psycopg.Connection[Any], results: Results) -> str | None:
    """What a broken Python check says (None when it holds). It runs in the watch's
    read-only transaction, with writes refused even past a COMMIT of its own (the
    session's default is read-only until that transaction ends)."""
    assert check.check is not None
    conn.execute("SET default_transaction_read_only = on")
    (began,) = _one(conn, "SELECT now()")
    try:
        check.check(conn, results)
    except AssertionError as exc:
        _same_transaction(check, conn, began)
        return str(exc) or "assertion failed"
    except _Absent:
        return None
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise InputError(
            f"invariant {check.name!r} raised {type(exc).__name__}: {first}; an invariant"
            " only reads, and raises AssertionError when it is broken, and nothing else"
        ) from None
    _same_transaction(check, conn, began)
    return None


def _one(conn: psycopg.Connection[Any], query: str) -> tuple[Any, ...]:
    row = conn.execute(query).fetchone()
    assert row is not None
    return tuple(row)


def _same_transaction(check: Invariant, conn: psycopg.Connection[Any], began: Any) -> None:
    """InputError when the check ended (or broke) the transaction it was given."""
    ended = conn.pgconn.transaction_status != psycopg.pq.TransactionStatus.INTRANS
    if ended or _one(conn, "SELECT now()")[0] != began:
        raise InputError(
            f"invariant {check.name!r} ended the read-only transaction it runs in (a COMMIT,"
            " a ROLLBACK, or an error it caught); an invariant only reads, and raises"
            " AssertionError when it is broken"
        )


class Checks(FirstBroken):
    """A violation the first time each invariant is seen broken."""

    def broken(self, state: Any) -> Iterator[tuple[str, str]]:
        _, broken = state or ((), ())
        for name, shown in broken:
            yield name, "; ".join(shown)


def _state(state: Any) -> str:
    if state is None:
        return ""
    rows, broken = state
    text = ", ".join(rows)
    if broken:
        text += (" " if text else "") + "broken: " + "; ".join(n for n, _ in broken)
    return text


def _statement(call: str, args: tuple[Any, ...], sql: str) -> str:
    where = f"{args[0]}: " if args and args[0] else ""
    text = " ".join(sql.split())
    return where + (text if len(text) <= 100 else text[:99] + "…")


def show() -> Show:
    """Watched rows, then the broken invariants' names; each step's source line and SQL."""
    return Show(
        statement=_statement,
        state=_state,
        state_json=lambda state: (
            None
            if state is None
            else {"rows": list(state[0]), "broken": {n: list(r) for n, r in state[1]}}
        ),
    )
