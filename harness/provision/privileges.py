"""What the role racesim connects as may do, asked once per server and role.

racesim's sessions set ``deadlock_timeout`` (a superuser setting) so deadlocks are
outcomes within milliseconds. A role given by DSN may not: PostgreSQL then refuses
every such ``SET`` (an error in its log per session), so racesim asks once and
does not try.

Example::

    if may_set(conn, "deadlock_timeout"):
        conn.execute("SET deadlock_timeout = 50")
"""

from __future__ import annotations

import threading
from typing import Any

import psycopg

__all__ = ["cannot_set_note", "may_set"]

_GRANTED = (
    "SELECT context IN ('superuser', 'superuser-backend'), has_parameter_privilege(name, 'SET')"
    " FROM pg_settings WHERE name = %s"
)
"""From PostgreSQL 15 a superuser setting may be granted (GRANT SET ON PARAMETER)."""
_SUPERUSER = (
    "SELECT context IN ('superuser', 'superuser-backend'),"
    " (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)"
    " FROM pg_settings WHERE name = %s"
)
_lock = threading.Lock()
_known: dict[tuple[str, int, str, str], bool] = {}


def may_set(conn: psycopg.Connection[Any], setting: str) -> bool:
    """Whether the session's role may ``SET`` ``setting`` (remembered per server and role).

    A setting anyone may set is always allowed; a superuser setting needs a
    superuser or, from PostgreSQL 15, ``GRANT SET ON PARAMETER``.
    """
    info = conn.info
    key = (info.host, info.port, info.user, setting)
    with _lock:
        if key in _known:
            return _known[key]
    # One round trip: whether only a superuser may set it, and whether this role may.
    query = _GRANTED if info.server_version >= 150000 else _SUPERUSER
    row = conn.execute(query, (setting,)).fetchone()
    allowed = row is not None and (not row[0] or bool(row[1]))
    with _lock:
        _known[key] = allowed
    return allowed


def cannot_set_note(user: str, setting: str, current: str, why: str) -> str:
    """The one line racesim prints when ``user`` may not set ``setting``."""
    return (
        f"racesim: note: role {user!r} may not SET {setting} (a superuser setting), so "
        f"sessions keep the server's {current} instead of racesim's short one: {why}; fix: "
        f"connect as a superuser, or on PostgreSQL 15+ GRANT SET ON PARAMETER {setting} TO {user}"
    )
