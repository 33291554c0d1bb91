"""A PostgreSQL for racesim: ``provide`` finds or starts one, as ``racesim --pg`` does.

``provide(choice, dsn)`` is a context manager giving a ``Server`` (``auto``: the DSN
given, else a local throwaway cluster, else Docker); ``Databases(server, prepare)``
makes fresh databases cloned from one prepared template::

    from racesim.provision import Databases, provide

    with provide("auto") as server, Databases(server, SYSTEM.prepare) as dbs:
        name = dbs.create()
        print(server.conninfo(name))

The modules behind these names are machinery. Each name loads its module on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from racesim.provision.databases import Databases
    from racesim.provision.provide import Server, provide

_HOMES = {
    "Databases": "racesim.provision.databases",
    "Server": "racesim.provision.provide",
    "provide": "racesim.provision.provide",
}

__all__ = ["Databases", "Server", "provide"]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'racesim.provision' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
