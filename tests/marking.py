"""Which tests need a PostgreSQL server or a child process: the ``postgres`` marker.

A test is marked ``postgres`` when its fixtures (transitively, as pytest resolves
them) include the session server, or when its code or the code of its fixtures,
followed through the helpers of its own module, reaches something that starts a
server or a process: the ``subprocess`` module, ``provide``, a ``Cluster``, or a
helper of the shared test modules that does (``commands``, ``spec_support``,
``browser``, ``installed``, ``toolchains``). ``pytest -m "not postgres"`` then runs
the rest, which take seconds.
"""

from __future__ import annotations

import inspect
import subprocess
import types
from collections.abc import Iterable
from typing import Any

import pytest

from racesim.provision.cluster import Cluster
from racesim.provision.provide import provide

# Fixtures that are, or sit on, a running server.
SERVER_FIXTURES = frozenset({"racesim_server", "pg_server", "target", "target15"})

# Shared test helpers whose every function starts a server, a process or a browser.
PROCESS_MODULES = frozenset({"commands", "spec_support", "browser", "installed", "toolchains"})

STARTERS: tuple[Any, ...] = (subprocess, subprocess.run, subprocess.Popen, provide, Cluster)


def _codes(code: types.CodeType) -> Iterable[types.CodeType]:
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _codes(const)


def _starts_processes(func: Any, seen: set[int]) -> bool:
    """Whether ``func`` or a function of its module it names reaches a starter."""
    func = inspect.unwrap(getattr(func, "__func__", func))
    code = getattr(func, "__code__", None)
    if code is None or id(code) in seen:
        return False
    seen.add(id(code))
    home = getattr(func, "__module__", None)
    names = getattr(func, "__globals__", {})
    for each in _codes(code):
        for name in each.co_names:
            value = names.get(name)
            if value is None:
                continue
            if any(value is starter for starter in STARTERS):
                return True
            where = getattr(value, "__module__", None) or getattr(value, "__name__", None)
            if where in PROCESS_MODULES:
                return True
            if where == home and _starts_processes(value, seen):
                return True
    return False


def needs_postgres(item: pytest.Item) -> bool:
    if not isinstance(item, pytest.Function):
        return False
    names = set(item.fixturenames)
    if names & SERVER_FIXTURES:
        return True
    seen: set[int] = set()
    if _starts_processes(item.obj, seen):
        return True
    for name in names:
        for fixturedef in item._fixtureinfo.name2fixturedefs.get(name, ()):
            if _starts_processes(fixturedef.func, seen):
                return True
    return False


def mark(items: list[pytest.Item]) -> None:
    for item in items:
        if needs_postgres(item):
            item.add_marker(pytest.mark.postgres)
