"""Cheap fresh databases: one prepared template per instance, cloned per use.

Example::

    def prepare(conn: psycopg.Connection[Any]) -> None:
        conn.execute("CREATE TABLE jobs (id int PRIMARY KEY)")

    with Databases(server, prepare) as dbs:
        name = dbs.create()          # a private copy of the prepared template
        with psycopg.connect(server.conninfo(name)) as conn:
            ...

Names are ``<label>_<pid>_<random hex>_<n>``, so concurrent processes and xdist
workers sharing a server never collide.

Clone strategy: on racesim's own tmpfs cluster ``STRATEGY = FILE_COPY`` (PG 15+)
measured faster than the default ``WAL_LOG`` (it copies files instead of writing
every page through WAL; its checkpoints are cheap with fsync off). On a server
given by DSN the server's default is kept: FILE_COPY forces two checkpoints per
clone, which a shared server should not pay for.
"""

from __future__ import annotations

import os
import re
import secrets
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Literal

import psycopg
from psycopg import sql

from racesim.provision.provide import Server, connect

__all__ = ["Databases"]

Strategy = Literal["auto", "default", "file_copy", "wal_log"]
_MAX_IDENTIFIER = 63
LEASE = 0x7ACE
"""First key of the advisory lock that marks a racesim process's databases as in use."""
_OURS_SQL = "^racesim[a-z0-9_]*_[0-9]+_[0-9a-f]{8}_(db|tpl)[0-9]+$"
_OURS = re.compile(r"^(?P<prefix>racesim[a-z0-9_]*_[0-9]+_[0-9a-f]{8})_(db|tpl)[0-9]+$")


class Databases:
    """Fresh databases on ``server``, all cloned from one template made by ``prepare``.

    ``prepare(conn)`` runs once, on an autocommit connection to the template, the
    first time :meth:`create` is called; with ``prepare=None`` (empty databases)
    there is no template of racesim's: each database is cloned from ``template0``,
    as ``createdb`` and ``pg_regress`` make theirs. :meth:`close` (or leaving the ``with``
    block) drops every database this instance made, the template included.
    """

    def __init__(
        self,
        server: Server,
        prepare: Callable[[psycopg.Connection[Any]], None] | None,
        *,
        label: str = "racesim",
        strategy: Strategy = "auto",
    ) -> None:
        self.server = server
        self._prepare = prepare
        self._prefix = f"{label[:30]}_{os.getpid()}_{secrets.token_hex(4)}"
        self._strategy = strategy
        self._count = 0
        self._conn: psycopg.Connection[Any] | None = None
        self._template: str | None = None
        self._created: list[str] = []
        self._reaped = False

    def __enter__(self) -> Databases:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def template(self) -> str:
        """The template's name (made and prepared on first use)."""
        if self._prepare is None:
            return "template0"
        if self._template is None:
            self._template = self._make_template(self._prepare)
        return self._template

    def create(self) -> str:
        """Create a fresh database cloned from the template; return its name."""
        template = self.template
        name = self._next_name("db")
        query = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
            sql.Identifier(name), sql.Identifier(template)
        )
        strategy = self._clone_strategy()
        if strategy is not None:
            query = sql.SQL("{} STRATEGY = {}").format(query, sql.SQL(strategy))
        self._execute(query)
        self._created.append(name)
        return name

    def drop(self, name: str, *, settle: float = 0.0) -> None:
        """Drop ``name``, disconnecting whoever is still connected to it.

        ``settle``: first wait up to that many seconds for sessions that were closed
        to leave (a backend exits a moment after its client closes; the server,
        finding it, retries the drop only 100 ms later).
        """
        if settle > 0:
            self._wait_until_unused(name, settle)
        self._execute(
            sql.SQL("DROP DATABASE IF EXISTS {}{}").format(sql.Identifier(name), self._force())
        )
        if name in self._created:
            self._created.remove(name)
        if name == self._template:
            self._template = None

    def close(self) -> None:
        """Drop every database this instance created, template last; close the connection."""
        try:
            for name in [*reversed(self._created), *([self._template] if self._template else [])]:
                self.drop(name)
        finally:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # -- machinery ------------------------------------------------------------------

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            # The connection provide() opened to look at the server, if still unused
            # (one authentication less), else a new one.
            self._conn = self.server.spare.take() or connect(
                self.server.conninfo(), autocommit=True
            )
            # The lease: held as long as this instance's session lives, so another
            # racesim can tell our databases from those of a process that died. The
            # first time, the same round trip lists the databases to look at.
            row = self._conn.execute(
                "SELECT CASE WHEN %s THEN array(SELECT datname FROM pg_database"
                " WHERE datname ~ %s ORDER BY datname) END"
                " FROM (SELECT pg_advisory_lock(%s, hashtext(%s))) AS lease",
                (not self._reaped, _OURS_SQL, LEASE, self._prefix),
            ).fetchone()
            if not self._reaped:
                self._reaped = True
                self.reap_stale(self._conn, row[0] if row is not None else None)
        return self._conn

    def reap_stale(
        self, conn: psycopg.Connection[Any], names: list[str] | None = None
    ) -> list[str]:
        """Drop databases left by racesim processes that died without cleaning up
        (``names``: racesim's databases on the server, when already listed).

        A database belongs to a live racesim while its owner's lease (a session
        advisory lock) is held; a lease we can take ourselves has no owner left.
        """
        if names is None:
            rows = conn.execute(
                "SELECT datname FROM pg_database WHERE datname ~ %s ORDER BY datname",
                (_OURS_SQL,),
            ).fetchall()
            names = [name for (name,) in rows]
        owners: dict[str, list[str]] = {}
        for name in names:
            m = _OURS.match(name)
            if m and m.group("prefix") != self._prefix:
                owners.setdefault(m.group("prefix"), []).append(name)
        dropped = []
        for prefix, names in owners.items():
            if _alive_here(int(prefix.rsplit("_", 2)[1])):
                # Its owner runs on this machine: a lease found free means only that its
                # session died (a terminated backend, a server restart) and is being
                # opened again, not that the databases are left over.
                continue
            got = conn.execute(
                "SELECT pg_try_advisory_lock(%s, hashtext(%s))", (LEASE, prefix)
            ).fetchone()
            if not got or not got[0]:
                continue  # its owner is alive
            try:
                for name in sorted(names, key=lambda n: "_tpl" in n):  # clones before template
                    self._execute(
                        sql.SQL("DROP DATABASE IF EXISTS {}{}").format(
                            sql.Identifier(name), self._force()
                        )
                    )
                    dropped.append(name)
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", (LEASE, prefix))
        return dropped

    def _execute(self, query: sql.Composed) -> None:
        try:
            self._connection().execute(query)
        except psycopg.OperationalError:
            # The maintenance session died (a server restart, a terminated backend):
            # open a new one and try once more; a second failure is real.
            if self._conn is not None:
                self._conn.close()
            self._connection().execute(query)

    def _force(self) -> sql.Composable:
        return sql.SQL(" WITH (FORCE)") if self.server.version >= 13 else sql.SQL("")

    def _next_name(self, kind: str) -> str:
        self._count += 1
        name = f"{self._prefix}_{kind}{self._count}"
        assert len(name.encode()) <= _MAX_IDENTIFIER, name
        return name

    def _clone_strategy(self) -> str | None:
        if self.server.version < 15:
            return None  # STRATEGY arrived in PostgreSQL 15
        if self._strategy == "auto":
            return "FILE_COPY" if self.server.source == "local" else None
        return None if self._strategy == "default" else self._strategy.upper()

    def _make_template(self, prepare: Callable[[psycopg.Connection[Any]], None]) -> str:
        name = self._next_name("tpl")
        self._execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
        self._created.append(name)
        with connect(self.server.conninfo(name), autocommit=True) as conn:
            prepare(conn)
        self._created.remove(name)
        self._wait_until_unused(name)
        return name

    def _wait_until_unused(self, name: str, bound: float = 5.0) -> None:
        # A closed session's backend exits asynchronously; CREATE DATABASE ... TEMPLATE
        # would otherwise find it and wait 100 ms or more before retrying.
        conn = self._connection()
        deadline = time.monotonic() + bound
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (name,)
            ).fetchone()
            if row is None or row[0] == 0:
                return
            time.sleep(0.001)


def _alive_here(pid: int) -> bool:
    """Whether a process ``pid`` runs on this machine (one of another user counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
