"""Fresh databases for a project's own tests, with the project's schema loaded.

``database(*load)`` makes a pytest fixture, as pytest-postgresql's ``load=`` does:
each test gets a fresh database on racesim's PostgreSQL (``racesim_server``)
with ``load`` applied, and the fixture's value is its conninfo. The loads run
once per test process, into a template that every test's database is cloned
from (a few milliseconds per test). The plugin's own ``racesim_empty_db`` is
``database()``: nothing loaded.

Each item of ``load`` is one of:

- a path to an ``.sql`` file (relative to pytest's rootdir), run as one script;
- a callable given an autocommit connection to the template;
- a racesim ``System``: its ``prepare``.

Besides what ``load`` puts there, the database holds only racesim's clock schema
(``racesim_clock``), which a plain session never sees; a session opened with
racesim's options follows racesim's virtual clock in it.

Example (``conftest.py``)::

    from racesim.testing import database

    seats_db = database("schema.sql")

    def test_booking(seats_db):
        with psycopg.connect(seats_db) as conn:
            ...
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

# Import-light, as the plugin that imports this module: the rest loads when a
# fixture is used.
if TYPE_CHECKING:
    import psycopg

    from racesim.provision.databases import Databases
    from racesim.provision.provide import Server
    from racesim.system import System

    Load = str | os.PathLike[str] | Callable[[psycopg.Connection[Any]], object] | System

__all__ = ["database"]


class Templates:
    """Prepared templates of one test process, one per distinct list of loads."""

    def __init__(self, server: Server, root: Path) -> None:
        self.server = server
        self.root = root
        self._made: dict[tuple[object, ...], Databases] = {}

    def databases(self, load: tuple[Load, ...]) -> Databases:
        from racesim.provision.databases import Databases

        key = tuple(
            str(self.root / item) if isinstance(item, str | os.PathLike) else id(item)
            for item in load
        )
        if key not in self._made:
            self._made[key] = Databases(self.server, self._preparer(load), label="racesim_user")
        return self._made[key]

    def _preparer(self, load: tuple[Load, ...]) -> Callable[[psycopg.Connection[Any]], None]:
        from racesim.engine import clock
        from racesim.system import System

        def prepare(conn: psycopg.Connection[Any]) -> None:
            for item in load:
                if isinstance(item, System):
                    item.prepare(conn)
                elif isinstance(item, str | os.PathLike):
                    _run_script(conn, self.root / item)
                else:
                    item(conn)
            clock.install(conn)

        return prepare

    def close(self) -> None:
        for dbs in self._made.values():
            dbs.close()
        self._made.clear()


def _is_path(item: object) -> bool:
    return isinstance(item, str | os.PathLike)


def _run_script(conn: psycopg.Connection[Any], path: Path) -> None:
    import psycopg

    problem = ""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problem = f"cannot read {path} ({exc}); check the load= path"
    else:
        try:
            conn.execute(text.encode())  # a file of the project's own, run as one script
        except psycopg.Error as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            problem = f"{path}{_line(text, exc)}: {first}; fix the SQL"
    if problem:  # failed outside the handler, so pytest shows no chained traceback
        pytest.fail(f"racesim: {problem}", pytrace=False)


def _line(text: str, exc: Any) -> str:
    """``:N`` for the line a PostgreSQL error points at (its character position), else ""."""
    diag = getattr(exc, "diag", None)
    position = getattr(diag, "statement_position", None)
    if not position or not str(position).isdigit():
        return ""
    return f":{text[: int(position)].count(chr(10)) + 1}"


def database(*load: Load) -> Any:
    """A pytest fixture: a fresh database per test with ``load`` applied; its conninfo.

    Assign it to a name in a test module or ``conftest.py``; that name is the
    fixture's name.
    """
    for item in load:
        if not (_is_path(item) or callable(item) or _is_system(item)):
            raise TypeError(
                f"database(): load items are .sql paths, callables or Systems, got {item!r}"
            )

    @pytest.fixture
    def fresh_database(racesim_templates: Templates) -> Iterator[str]:
        dbs = racesim_templates.databases(load)
        name = dbs.create()
        try:
            yield dbs.server.conninfo(name)
        finally:
            dbs.drop(name)

    return fresh_database


def _is_system(item: object) -> bool:
    from racesim.system import System

    return isinstance(item, System)
