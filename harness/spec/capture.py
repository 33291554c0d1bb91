"""What racesim sends to bring an empty database to a run's start, captured for
``--export-spec``: a scratch database is prepared the way a run's database is (the
system's schema, the virtual clock, the store's own preparation and reset), every
statement noted; the objects it created become the teardown's drops.

Example::

    setup = capture(server, system, "legacy")
    setup.statements, setup.drops
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from racesim.engine.prepare import preparer
from racesim.engine.sessions import NotingConnection, note_statements, open_session, sent
from racesim.errors import InputError
from racesim.provision.databases import Databases
from racesim.provision.provide import Server
from racesim.system import System

__all__ = ["Setup", "capture", "refuse_in_memory"]

_OBJECTS = """
SELECT 0, format('SCHEMA IF EXISTS %I', nspname) FROM pg_namespace
 WHERE nspname NOT IN ('public', 'pg_catalog', 'information_schema', 'pg_toast')
   AND nspname NOT LIKE 'pg\\_temp\\_%' AND nspname NOT LIKE 'pg\\_toast\\_temp\\_%'
UNION ALL
SELECT CASE c.relkind WHEN 'v' THEN 1 WHEN 'm' THEN 2 WHEN 'S' THEN 4 ELSE 3 END,
       format(CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
              WHEN 'S' THEN 'SEQUENCE' WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END
              || ' IF EXISTS %I.%I', n.nspname, c.relname)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
UNION ALL
SELECT 5, format(CASE p.prokind WHEN 'p' THEN 'PROCEDURE' WHEN 'a' THEN 'AGGREGATE'
                 ELSE 'FUNCTION' END || ' IF EXISTS %I.%I(%s)', n.nspname, p.proname,
                 pg_get_function_identity_arguments(p.oid))
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public'
UNION ALL
SELECT 6, format(CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END || ' IF EXISTS %I.%I',
                 n.nspname, t.typname)
  FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
 WHERE n.nspname = 'public' AND (t.typtype IN ('e', 'd', 'r')
       OR (t.typtype = 'c' AND (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c'))
UNION ALL
SELECT 7, format('EXTENSION IF EXISTS %I', extname) FROM pg_extension WHERE extname <> 'plpgsql'
"""
"""Every object of the connected database a teardown would drop, in dropping order."""


@dataclass(frozen=True)
class Setup:
    """What racesim sends to bring an empty database to a run's start, for one store."""

    statements: tuple[str, ...]
    drops: tuple[str, ...]
    """``DROP ... CASCADE`` of each object the statements created."""
    watch: tuple[str, ...]
    """The monitor's read of the watched state."""
    initial: Any = None
    """The watched state it read on the prepared database (a run's state at its start)."""


def capture(server: Server, system: System, store: str) -> Setup:
    """Prepare a scratch database for ``store`` of ``system`` the way a run's database
    is prepared, noting every statement sent; then drop it."""
    refuse_in_memory(system, store)
    variant = system.variant(store)
    with Databases(server, lambda conn: None, label="racesim_export") as dbs:
        name = dbs.create()
        conn = open_session(server.conninfo(name), application_name="racesim-export")
        try:
            assert isinstance(conn, NotingConnection)
            before = _objects(conn)
            note_statements(conn, keep=None)
            preparer(system)(conn)
            if variant.prepare is not None:
                variant.prepare(conn)
            if variant.reset is not None:
                variant.reset(conn)
            statements = sent(conn, forget=True)
            initial = variant.watch(conn)
            watch = sent(conn, forget=True)
            note_statements(conn, keep=0)
            created = [o for o in _objects(conn) if o not in before]
        finally:
            conn.close()
    drops = tuple(f"DROP {what} CASCADE" for _, what in sorted(created))
    return Setup(statements, drops, watch, initial)


def refuse_in_memory(system: System, store: str) -> None:
    """InputError when ``store`` of ``system`` runs in memory: it sends no SQL to export."""
    if not system.variant(store).database:
        stores = [v.name for v in system.variants if v.database]
        raise InputError(
            f"--export-spec: the {store} store runs in memory and sends no SQL; fix: choose"
            f" a store on the database ({', '.join(stores) or 'none'})"
        )


def _objects(conn: psycopg.Connection[Any]) -> list[tuple[int, str]]:
    return [(int(order), str(what)) for order, what in conn.execute(_OBJECTS).fetchall()]
