"""A job queue: workers claim jobs from a table and process them.

Two claim variants: ``naive`` (``SELECT ... LIMIT 1`` then ``UPDATE``: the
classic double claim) and ``skiplocked`` (``UPDATE ... WHERE id = (SELECT ...
FOR UPDATE SKIP LOCKED)``). A claim holds its job for a lease measured on
``NOW()`` (racesim's virtual clock), so a job held by a crashed worker comes back.
"""

from __future__ import annotations

from typing import Any

import psycopg

from racesim.systems.jobqueue.interface import LEASE, Claimed, QueueStore
from racesim.systems.jobqueue.naive import NaiveStore
from racesim.systems.jobqueue.skiplocked import SkipLockedStore

STORES = ("naive", "skiplocked")


def open_store(name: str, conn: psycopg.Connection[Any], worker: str) -> QueueStore:
    """A variant by name on ``conn``, for the worker (or producer) called ``worker``."""
    if name == "naive":
        return NaiveStore(conn, worker)
    if name == "skiplocked":
        return SkipLockedStore(conn, worker)
    raise ValueError(f"unknown job queue store {name!r}: choose one of {', '.join(STORES)}")


__all__ = [
    "LEASE",
    "STORES",
    "Claimed",
    "NaiveStore",
    "QueueStore",
    "SkipLockedStore",
    "open_store",
]
