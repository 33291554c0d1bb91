"""Connecting to PostgreSQL so that an interrupted connect leaves no connection behind.

psycopg keeps the connection it is making in the frames of its ``connect``. When
a signal interrupts it (SIGTERM or Ctrl-C become exceptions, see
:mod:`racesim.provision.cleanup`), the exception's traceback keeps those frames,
and so the half-made connection, alive until racesim's top level handles it:
through every ``finally`` and ``with`` exit on the way out. Such a connection
sits in the middle of authentication, and its backend answers no one until
``authentication_timeout`` (a minute by default) ends it. Meanwhile PostgreSQL's
``DROP DATABASE`` waits for every backend to acknowledge it (the
``ProcSignalBarrier`` wait event), so racesim's cleanup, which drops its
databases, would hang for that minute before racesim exits.

:func:`connect` lets go of whatever a failed connect was holding before the
exception goes on, so the connection is closed at once and the server ends its
backend.

Example::

    with connect(conninfo, autocommit=True) as conn:
        conn.execute("SELECT 1")
"""

from __future__ import annotations

import threading
import traceback
from typing import Any

import psycopg

__all__ = ["Spare", "connect"]


def connect(
    conninfo: str, *, cls: type[psycopg.Connection[Any]] = psycopg.Connection, **kwargs: Any
) -> psycopg.Connection[Any]:
    """``cls.connect`` (``psycopg.connect``); when it fails or is interrupted, nothing
    of it stays open."""
    try:
        return cls.connect(conninfo, **kwargs)
    except BaseException as exc:
        # The frames the exception passed through hold the half-made connection;
        # clearing their variables closes it now. The traceback itself stays whole.
        traceback.clear_frames(exc.__traceback__)
        raise


class Spare:
    """An open connection handed on once: whoever opened it for a look at the server
    (its version, its role's rights) leaves it here, and the first that needs a
    maintenance connection to the same database takes it instead of opening its own
    (one authentication less). The owner closes it if no one took it."""

    def __init__(self, conn: psycopg.Connection[Any] | None = None) -> None:
        self._conn = conn
        self._lock = threading.Lock()

    def take(self) -> psycopg.Connection[Any] | None:
        """The connection (at most once), or None when there is none or it closed."""
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is None or conn.closed:
            return None
        return conn

    def close(self) -> None:
        """Close the connection if no one took it."""
        conn = self.take()
        if conn is not None:
            conn.close()
