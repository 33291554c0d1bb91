"""A session's own state a user's function left behind, undone before the next run.

A function may change its session for longer than its transaction: ``SET`` (not
``LOCAL``), ``SET SESSION CHARACTERISTICS``, a temporary table, a prepared statement,
a cursor ``WITH HOLD``, ``LISTEN``, a session-level advisory lock. Sessions outlive runs, so the next run on that
session (any actor's) would start from that state: a ``CREATE TEMP TABLE`` would fail
there, which no single run causes. After a run whose functions sent such a statement,
their sessions get their settings back as they were before the first function ran on
them, and lose temporary tables, prepared statements, cursors, listens and advisory
locks.
"""

from __future__ import annotations

import re
import weakref
from typing import Any

import psycopg
from psycopg import sql

__all__ = ["baseline", "lasting", "tidy"]

_LASTING = re.compile(
    r"(?:^|;)\s*(?:SET|RESET|CREATE|PREPARE|LISTEN|DECLARE|DISCARD|LOAD|SELECT\s+set_config)\b"
    r"|\bpg_(?:try_)?advisory_lock",
    re.I,
)
"""Statements that may change a session past its transaction (some never do: a check,
not a proof; a false alarm costs one cleanup)."""

SETTINGS = "SELECT name, setting FROM pg_settings WHERE source = 'session' ORDER BY name"

PREPARED = "SELECT name FROM pg_prepared_statements WHERE from_sql"

_BASELINE: weakref.WeakKeyDictionary[psycopg.Connection[Any], dict[str, str]] = (
    weakref.WeakKeyDictionary()
)


def lasting(statement: str) -> bool:
    """Whether ``statement`` may leave state on its session past its transaction."""
    return _LASTING.search(statement) is not None


def _settings(session: psycopg.Connection[Any]) -> dict[str, str]:
    return {str(name): str(value) for name, value in session.execute(SETTINGS).fetchall()}


def baseline(session: psycopg.Connection[Any]) -> None:
    """Note ``session``'s own settings once, before a function first runs on it."""
    if session not in _BASELINE:
        _BASELINE[session] = _settings(session)


def tidy(session: psycopg.Connection[Any]) -> None:
    """Put ``session`` (idle, its run over) back as :func:`baseline` noted it."""
    if session.closed or session.broken:
        return
    if session.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        session.execute("ROLLBACK")
    session.execute("CLOSE ALL")
    session.execute("UNLISTEN *")
    session.execute("DISCARD TEMP")
    session.execute("SELECT pg_advisory_unlock_all()")
    # only the function's PREPAREs: psycopg's own prepared statements are not from SQL
    for (name,) in session.execute(PREPARED).fetchall():
        session.execute(sql.SQL("DEALLOCATE {}").format(sql.Identifier(name)))
    before = _BASELINE.get(session, {})
    for name, value in _settings(session).items():
        if name not in before:
            session.execute(sql.SQL("RESET {}").format(sql.Identifier(name)))
        elif before[name] != value:
            session.execute("SELECT set_config(%s, %s, false)", (name, before[name]))
