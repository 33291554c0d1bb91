"""What each step of a ``.spec`` reads and writes, where its SQL makes that safe to say.

Two steps of different sessions whose footprints do not conflict can be run in
either order with the same results, the same waits and the same invariant checks
after every step; the exhaustive searches run only one of the two orders.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from racesim.spec.parse import Spec
from racesim.system import Footprint

if TYPE_CHECKING:
    from racesim.spec.explore import Invariant

__all__ = ["conflict", "footprints"]

_WORD = re.compile(r'"((?:[^"]|"")+)"|([A-Za-z_][A-Za-z0-9_$]*)')
_CONTROL = re.compile(
    r"\s*(BEGIN|START\s+TRANSACTION|SET|RESET|SHOW|SAVEPOINT|RELEASE|COMMIT|ROLLBACK|END|"
    r"ABORT|SELECT\s+pg_sleep)\b",
    re.IGNORECASE,
)
_ENDS = re.compile(r"\s*(COMMIT|ROLLBACK|END|ABORT|PREPARE\s+TRANSACTION)\b", re.IGNORECASE)
_READ_ONLY = re.compile(r"\s*(SELECT|WITH|TABLE|VALUES)\b", re.IGNORECASE)
_LOCKING = re.compile(r"\bFOR\s+(UPDATE|SHARE|NO\s+KEY|KEY)\b|\bnextval\b|\bsetval\b", re.I)
_ADVISORY = re.compile(r"\bpg_(try_)?advisory", re.IGNORECASE)
_CREATED = re.compile(
    r"\bCREATE\s+(?:OR\s+REPLACE\s+)?(?:(?:GLOBAL\s+|LOCAL\s+)?(?:TEMP|TEMPORARY|UNLOGGED)\s+)?"
    r"(TABLE|VIEW|MATERIALIZED\s+VIEW|SEQUENCE|FUNCTION|PROCEDURE|TYPE|DOMAIN)\s+"
    r"(?:IF\s+NOT\s+EXISTS\s+)?(?:[A-Za-z_][A-Za-z0-9_]*\.)?"
    r'("(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)',
    re.IGNORECASE,
)
_TANGLED = re.compile(r"\b(REFERENCES|TRIGGER|RULE|POLICY|INHERITS|PARTITION|EXTENSION)\b", re.I)
"""Setup that lets a statement on one table touch others: no reduction at all."""


def _names(sql: str) -> set[str]:
    return {(q.replace('""', '"') if q else w.lower()) for q, w in _WORD.findall(sql)}


def footprints(spec: Spec, invariants: Iterable[Invariant]) -> dict[str, Footprint]:
    """What each step reads and writes, where the spec's SQL makes it safe to say.

    Resources are the tables the setup creates (by name, as written), the advisory
    locks, and one per invariant (written by any step that writes a table the
    invariant reads, so steps that change what an invariant sees are never
    reordered). A step that names a view, sequence, function or type of the setup,
    or no table at all (and is not transaction control or a setting), gets no
    footprint: it conflicts with everything. With foreign keys, triggers, rules,
    policies, inheritance or partitions in the setup, no step gets one.
    """
    setup = "\n".join(spec.setups)
    if _TANGLED.search(setup):
        return {}
    tables: set[str] = set()
    others: set[str] = set()
    for kind, name in _CREATED.findall(setup):
        name = name[1:-1].replace('""', '"') if name.startswith('"') else name.lower()
        (tables if kind.upper() == "TABLE" else others).add(name)
    watched = {f"invariant:{inv.name}": _names(inv.sql) & tables for inv in invariants}
    found: dict[str, Footprint] = {}
    for session in spec.sessions:
        own: set[str] = set()
        for step in session.steps:
            own |= _names(step.sql) & tables
        for step in session.steps:
            fp = _footprint(step.sql, tables, others, own, watched)
            if fp is not None:
                found[step.name] = fp
    return found


def _footprint(
    sql: str, tables: set[str], others: set[str], own: set[str], watched: dict[str, set[str]]
) -> Footprint | None:
    words = _names(sql)
    if words & others:
        return None
    named = words & tables
    advisory = {"advisory"} if _ADVISORY.search(sql) else set()
    statements = [s for s in sql.split(";") if s.strip()]
    if any(_ENDS.match(s) for s in statements):
        writes = own | {"advisory"}  # a transaction's end releases its advisory locks too
        return Footprint(writes=frozenset(writes | _touching(writes, watched)))
    if not named and not advisory:
        if statements and all(_CONTROL.match(s) for s in statements):
            return Footprint()
        return None
    if all(_READ_ONLY.match(s) and not _LOCKING.search(s) for s in statements) and not advisory:
        return Footprint(reads=frozenset(named))
    writes = named | advisory
    return Footprint(writes=frozenset(writes | _touching(writes, watched)))


def _touching(writes: set[str], watched: dict[str, set[str]]) -> set[str]:
    return {name for name, read in watched.items() if read & writes}


def conflict(a: Footprint | None, b: Footprint | None) -> bool:
    """True when the order of two steps of different sessions may matter."""
    if a is None or b is None:
        return True
    return bool(a.writes & (b.reads | b.writes) or b.writes & a.reads)
