"""The marker store's one interface, shared by the legacy, token and model versions."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

STALE_AFTER = timedelta(minutes=5)
"""A marker older than this may be taken over by the next mark (auto-recovery)."""

TokenSource = Callable[[], str]


class StoreInputError(ValueError):
    """A store call refused its input before any SQL ran (empty or malformed token)."""


@dataclass(frozen=True)
class MarkResult:
    """What mark returns: ``ok`` when this caller now holds the marker.

    ``token`` is the owner token (empty when ``ok`` is false, and always empty for
    the legacy store, which has no owners).
    """

    ok: bool
    token: str = ""


@dataclass(frozen=True)
class Freshness:
    """The three columns the page and the refresh handler read."""

    collected_at: datetime | None
    error: str | None
    started_at: datetime | None


class MarkerStore(Protocol):
    """The collection-in-flight marker, one session's view of it.

    Every call runs on the store's own connection (its session); stores never
    share a connection.
    """

    name: str
    uses_tokens: bool

    def mark(self) -> MarkResult: ...

    def clear(self, token: str) -> None: ...

    def set_collection_error(self, message: str) -> None: ...

    def upsert_recommendations(self) -> None: ...

    def get_freshness(self) -> Freshness: ...

    def try_task_lock(self, key: int) -> bool: ...

    def release_task_lock(self, key: int) -> bool: ...

    def close(self) -> None: ...


def random_tokens() -> str:
    """A fresh UUID4 per call: the production token source."""
    return str(uuid.uuid4())


def seeded_tokens(seed: int) -> TokenSource:
    """A deterministic UUID4 source, so the same seed gives the same tokens."""
    import random

    rng = random.Random(seed)

    def next_token() -> str:
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))

    return next_token


def task_lock_key(task: str) -> int:
    """The advisory-lock key for a task name (a signed 64-bit integer)."""
    return int.from_bytes(hashlib.sha256(task.encode()).digest()[:8], "big", signed=True)


def check_token(token: str) -> str:
    """Refuse an empty or non-UUID token before any SQL, as the fixed store does."""
    if not token:
        raise StoreInputError("empty owner token: clear needs the token that mark returned")
    try:
        return str(uuid.UUID(token))
    except ValueError:
        raise StoreInputError(f"owner token is not a UUID: {token[:40]!r}") from None
