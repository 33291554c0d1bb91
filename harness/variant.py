"""A variant: one implementation (a store) of a system, opened once per run.

A store never knows the harness exists: ``Variant.open`` makes it from a
``Session`` (the run's own connection, or a shared in-memory world), and the
harness only calls its methods, reads the watched state through ``watch`` and
puts the database back with ``reset``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

__all__ = ["Connection", "Session", "Variant", "sql_reset", "watch_sql"]

Connection = psycopg.Connection[Any]


@dataclass(frozen=True)
class Session:
    """What a variant's ``open`` gets for one run."""

    conn: Connection | None
    """The run's own autocommit session (None for an in-memory variant)."""
    world: Any
    """The run's shared in-memory state (``Variant.world``), or None."""
    seed: int
    """A seed of this run's own: the same plan seed and actor give the same value."""
    actor: str = ""
    """The run's actor name (a store may stamp its rows with it)."""
    program: str = ""
    """The program the run runs (a command's store starts that program's command)."""


@dataclass(frozen=True)
class Variant:
    """One implementation (a store) a plan can run against.

    ``open`` makes the object whose methods ``db`` calls name, for one run; if it
    has a ``close()``, the harness calls it when the run's session ends. A
    variant with ``database=False`` runs in memory: ``world`` makes the state its
    sessions share for one run (given the virtual clock's ``now``) and ``watch``
    reads that world instead of the monitor session.
    """

    name: str
    open: Callable[[Session], Any]
    watch: Callable[[Any], Any]
    """The watched state: given the monitor connection (or the world, in memory),
    return a value to record after every event (compared with ``==``)."""
    prepare: Callable[[Connection], None] | None = None
    """Bring a database prepared by ``System.prepare`` to what this variant needs."""
    reset: Callable[[Connection], None] | None = None
    """Put the state back to fresh between runs (on the monitor session)."""
    database: bool = True
    world: Callable[[Callable[[], datetime]], Any] | None = None
    follows_model: bool = False
    """Results must equal the system's model (checked beside it, and a scenario
    naming this variant is first walked on the model to check its steps)."""


def watch_sql(
    query: str, shape: Callable[[tuple[Any, ...] | None], Any] = lambda row: row
) -> Callable[[Any], Any]:
    """A ``Variant.watch`` that runs ``query`` on the monitor and shapes its first row."""

    def watch(conn: Connection) -> Any:
        return shape(conn.execute(query).fetchone())

    return watch


def sql_reset(statements: str) -> Callable[[Connection], None]:
    """A ``Variant.reset`` that runs fixed SQL (several statements may be ``;``-joined)."""

    def reset(conn: Connection) -> None:
        conn.execute(statements)

    return reset
