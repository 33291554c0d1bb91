"""A protocol round as the gate holds it, and what the server answered to it."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

_ORDER = itertools.count()


@dataclass
class Round:
    """One protocol round a client sent (not yet released)."""

    data: bytes
    """Its messages, as the client sent them."""
    sql: tuple[str, ...]
    """The SQL of its Query or Bind messages, in order ("" for an unknown prepared one)."""
    syncs: int
    """ReadyForQuery messages that end it (1)."""
    order: int = field(default_factory=lambda: next(_ORDER))


@dataclass
class RoundResult:
    """What the server answered to one round."""

    tags: list[str] = field(default_factory=list)
    """CommandComplete tags, in order."""
    error: tuple[str, str] | None = None
    """(SQLSTATE, message) of the first ErrorResponse, if any."""
    status: str = "I"
    """The transaction status ReadyForQuery gave (I, T or E)."""
