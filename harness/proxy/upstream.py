"""racesim's own connection to the real server, on behalf of one client connection.

libpq (through psycopg) connects and authenticates as racesim; the proxy then
speaks the protocol itself on a duplicate of that connection's socket. The
client's startup parameters pass through as libpq settings, after the virtual
clock's ``search_path`` and the custom setting ``racesim.actor`` (so an
invariant's trigger can tell which actor changed a row).
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from dataclasses import dataclass
from typing import Any

import psycopg

from racesim.engine.clock import SESSION_OPTIONS
from racesim.provision.connecting import connect

REPORTED = (
    "server_version",
    "server_encoding",
    "client_encoding",
    "application_name",
    "DateStyle",
    "IntervalStyle",
    "TimeZone",
    "integer_datetimes",
    "standard_conforming_strings",
    "is_superuser",
    "session_authorization",
    "default_transaction_read_only",
    "in_hot_standby",
)
"""The ParameterStatus values a client is told at startup, as the server reports them."""

NOT_PASSED = frozenset({"user", "database", "replication"})
"""Startup parameters racesim sets itself (its own role and the run's database)."""

CLOSE_WAIT = 1.0
"""Seconds a session closed between rounds is given to end on the server."""

_AS_KEYWORD = frozenset({"application_name", "client_encoding"})

_OURS: set[int] = set()
"""Backends of every proxied connection open in this process (see ``proxied``)."""
_OURS_LOCK = threading.Lock()


def proxied() -> list[int]:
    """The backend pids of every connection racesim's proxies hold open now."""
    with _OURS_LOCK:
        return sorted(_OURS)


def _escape(value: str) -> str:
    """A value inside libpq's ``options`` (spaces and backslashes escaped)."""
    return value.replace("\\", "\\\\").replace(" ", "\\ ")


@dataclass
class Upstream:
    conn: psycopg.Connection[Any]
    sock: socket.socket
    pid: int

    def statuses(self) -> list[tuple[str, str]]:
        found = []
        for name in REPORTED:
            value = self.conn.info.parameter_status(name)
            if value is not None:
                found.append((name, value))
        return found

    def cancel(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.cancel_safe(timeout=2.0)

    def close(self, wait: bool = False) -> None:
        """End the session; with ``wait``, return once the server has ended it (so
        no look at pg_stat_activity finds it lingering), or after ``CLOSE_WAIT``."""
        with contextlib.suppress(OSError):
            self.sock.sendall(b"X\x00\x00\x00\x04")
        if wait:
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_WR)
                self.sock.settimeout(CLOSE_WAIT)
                while self.sock.recv(65536):
                    pass
        with _OURS_LOCK:
            _OURS.discard(self.pid)
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        with contextlib.suppress(Exception):
            self.conn.close()


def open_upstream(conninfo: str, startup: dict[str, str], actor: str) -> Upstream:
    """A new server session for a client that sent ``startup``."""
    options = [SESSION_OPTIONS, f"-c racesim.actor={_escape(actor)}"]
    kwargs: dict[str, Any] = {}
    for name, value in startup.items():
        if name in NOT_PASSED:
            continue
        if name in _AS_KEYWORD:
            kwargs[name] = value
        elif name == "options":
            options.append(value)
        else:
            options.append(f"-c {_escape(name)}={_escape(value)}")
    conn = connect(conninfo, options=" ".join(options), **kwargs)
    try:
        sock = socket.socket(fileno=os.dup(conn.pgconn.socket))
        sock.setblocking(True)
    except BaseException:
        conn.close()
        raise
    with _OURS_LOCK:
        _OURS.add(conn.info.backend_pid)
    return Upstream(conn, sock, conn.info.backend_pid)
