"""What each step of a ``.spec`` reads and writes, where its SQL makes that safe to say.

Two steps of different sessions whose footprints do not conflict can be run in
either order with the same results, the same waits and the same invariant checks
after every step; the exhaustive searches run only one of the two orders. The
footprints come from PostgreSQL's own parser (``racesim.footprints``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from racesim.footprints import Session, conflicts, of_sql, schema_of
from racesim.spec.parse import Spec
from racesim.system import Footprint

__all__ = ["conflict", "footprints"]


class Invariant(Protocol):
    """What is read of an invariant (a ``racesim.spec.explore.Invariant``)."""

    @property
    def name(self) -> str: ...

    @property
    def sql(self) -> str: ...


def footprints(spec: Spec, invariants: Iterable[Invariant]) -> dict[str, Footprint]:
    """What each step reads and writes, where the spec's SQL makes it safe to say.

    Resources are the relations the setup creates (by name), the advisory locks,
    and one per invariant (written by any step that writes a relation the
    invariant reads, so steps that change what an invariant sees are never
    reordered). Each session's steps are read in order after its own setup, so a
    transaction's end writes everything the transaction touched and the statement
    that takes a REPEATABLE READ or SERIALIZABLE snapshot reads every relation. A
    step that names a view, a function of the setup or anything the parser cannot
    place gets no footprint: it conflicts with everything. With foreign keys,
    triggers, rules, policies, inheritance, partitions or extensions in the setup
    (or setup SQL the parser cannot read), no step gets one.
    """
    schema = schema_of(";\n".join(spec.setups))
    if schema is None:
        return {}
    watched: dict[str, frozenset[str]] = {}
    for inv in invariants:
        seen = of_sql(inv.sql, schema)
        watched[f"invariant:{inv.name}"] = (
            schema.relations if seen is None else seen.reads | seen.writes
        )
    found: dict[str, Footprint] = {}
    for session in spec.sessions:
        state = Session(schema)
        if session.setup is not None:
            state.next(session.setup)
        for step in session.steps:
            fp = state.next(step.sql)
            if fp is not None:
                touched = {name for name, read in watched.items() if read & fp.writes}
                found[step.name] = Footprint(reads=fp.reads, writes=fp.writes | touched)
    return found


def conflict(a: Footprint | None, b: Footprint | None) -> bool:
    """True when the order of two steps of different sessions may matter."""
    return conflicts(a, b)
