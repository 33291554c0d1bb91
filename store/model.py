"""The intended behaviour, in memory: the owner-token protocol without a database.

A ``ModelDatabase`` plays the server (the one row and the advisory locks); each
``ModelStore`` is one session on it. Time comes from the ``now`` callable, so the
model follows the same virtual clock as the PostgreSQL stores.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from racesim.store.interface import (
    STALE_AFTER,
    Freshness,
    MarkResult,
    TokenSource,
    check_token,
    random_tokens,
)


@dataclass
class ModelDatabase:
    """The shared state every model session sees."""

    now: Callable[[], datetime]
    collected_at: datetime | None = None
    error: str | None = None
    started_at: datetime | None = None
    owner: str | None = None
    locks: dict[int, tuple[int, int]] = field(default_factory=dict)
    """Advisory locks: key -> (holding session, times taken); re-entrant as in PostgreSQL."""
    _sessions: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def session(self, tokens: TokenSource = random_tokens) -> ModelStore:
        return ModelStore(self, next(self._sessions), tokens)


class ModelStore:
    """One session on a ``ModelDatabase``; same interface as the SQL stores."""

    name = "model"
    uses_tokens = True

    def __init__(self, db: ModelDatabase, session_id: int, tokens: TokenSource) -> None:
        self.db = db
        self.session_id = session_id
        self.tokens = tokens

    def mark(self) -> MarkResult:
        token = check_token(self.tokens())
        db = self.db
        now = db.now()
        if db.started_at is None or db.started_at < now - STALE_AFTER:
            db.started_at, db.owner = now, token
            return MarkResult(ok=True, token=token)
        return MarkResult(ok=False, token="")

    def clear(self, token: str) -> None:
        token = check_token(token)
        if self.db.owner == token:
            self.db.started_at, self.db.owner = None, None

    def set_collection_error(self, message: str) -> None:
        self.db.error = message

    def upsert_recommendations(self) -> None:
        self.db.collected_at, self.db.error = self.db.now(), None

    def get_freshness(self) -> Freshness:
        db = self.db
        return Freshness(collected_at=db.collected_at, error=db.error, started_at=db.started_at)

    def try_task_lock(self, key: int) -> bool:
        holder, count = self.db.locks.get(key, (self.session_id, 0))
        if holder != self.session_id:
            return False
        self.db.locks[key] = (holder, count + 1)
        return True

    def release_task_lock(self, key: int) -> bool:
        holder, count = self.db.locks.get(key, (0, 0))
        if holder != self.session_id:
            return False
        if count > 1:
            self.db.locks[key] = (holder, count - 1)
        else:
            del self.db.locks[key]
        return True

    def close(self) -> None:
        # A session's advisory locks end with it, as in PostgreSQL.
        for key in [k for k, (s, _) in self.db.locks.items() if s == self.session_id]:
            del self.db.locks[key]
