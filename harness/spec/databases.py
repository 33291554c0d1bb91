"""Where ``.spec`` files run: a PostgreSQL with empty fresh databases."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from racesim.provision.databases import Databases
from racesim.provision.provide import provide

__all__ = ["spec_databases"]


@contextmanager
def spec_databases(
    pg: str = "auto", dsn: str | None = None, *, binaries: str | None = None
) -> Iterator[Databases]:
    """A PostgreSQL with empty fresh databases for specs (each cloned from template0,
    as pg_regress makes the database isolationtester runs in), cleaned up on exit."""
    with (
        provide(pg, dsn, binaries=binaries) as server,
        Databases(server, None, label="racesim_spec") as dbs,
    ):
        yield dbs
