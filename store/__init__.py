"""The reference system: the collection-in-flight marker, its stores and its callers.

>>> store = open_store("token", conn)          # doctest: +SKIP
>>> result = store.mark()                      # MarkResult(ok=True, token='...')
>>> store.clear(result.token)
"""

from __future__ import annotations

from typing import Any

import psycopg

from racesim.store.callers import FAULTS, PROGRAMS
from racesim.store.interface import (
    STALE_AFTER,
    Freshness,
    MarkerStore,
    MarkResult,
    StoreInputError,
    TokenSource,
    random_tokens,
    seeded_tokens,
    task_lock_key,
)
from racesim.store.legacy import LegacyStore
from racesim.store.migrate import LATEST, migrate
from racesim.store.model import ModelDatabase, ModelStore
from racesim.store.token import TokenStore
from racesim.system import Call, InjectedFault, Program, RunContext

STORES = ("legacy", "token", "model")
"""Store names, as scenarios and the command line spell them."""

SCHEMA_VERSION = {"legacy": 2, "token": 3}
"""The lowest schema version each PostgreSQL store needs."""


def open_store(
    name: str,
    conn: psycopg.Connection[Any] | None = None,
    *,
    model: ModelDatabase | None = None,
    tokens: TokenSource = random_tokens,
) -> MarkerStore:
    """A store by name: ``legacy`` and ``token`` on ``conn``, ``model`` on ``model``."""
    if name not in STORES:
        raise ValueError(f"unknown store {name!r}: choose one of {', '.join(STORES)}")
    if name == "model":
        if model is None:
            raise ValueError("the model store needs a ModelDatabase")
        return model.session(tokens)
    if conn is None:
        raise ValueError(f"the {name} store needs a connection")
    if name == "legacy":
        return LegacyStore(conn)
    if name == "token":
        return TokenStore(conn, tokens)
    raise ValueError(f"unknown store {name!r}: choose one of {', '.join(STORES)}")


__all__ = [
    "FAULTS",
    "LATEST",
    "PROGRAMS",
    "SCHEMA_VERSION",
    "STALE_AFTER",
    "STORES",
    "Call",
    "Freshness",
    "InjectedFault",
    "LegacyStore",
    "MarkResult",
    "MarkerStore",
    "ModelDatabase",
    "ModelStore",
    "Program",
    "RunContext",
    "StoreInputError",
    "TokenSource",
    "TokenStore",
    "migrate",
    "open_store",
    "random_tokens",
    "seeded_tokens",
    "task_lock_key",
]
