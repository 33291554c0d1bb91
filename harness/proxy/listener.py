"""Where an actor's clients connect: a Unix socket in a run directory of its own (mode
0700), or 127.0.0.1 with a password made for this run. Never any other address.

``env()`` is what a command needs to find it: libpq's ``PGHOST``/``PGPORT``/
``PGUSER``/``PGDATABASE`` (and ``PGPASSWORD`` on TCP) and a ``DATABASE_URL``.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import socket
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from racesim.proxy.gate import Gate
from racesim.proxy.handshake import handshake
from racesim.proxy.upstream import Upstream

PORT = 5432
"""The port number in the Unix socket's name (``.s.PGSQL.5432``)."""
USER = DATABASE = "racesim"
"""What clients are told to log in as; racesim logs in upstream as itself."""


class Listener:
    """Accepts one actor's client connections until ``close``."""

    def __init__(
        self, gate: Gate, connect: Callable[[dict[str, str]], Upstream], tcp: bool = False
    ) -> None:
        self.gate = gate
        self.connect = connect
        self.startups: list[tuple[threading.Thread, socket.socket]] = []
        """Connections in their startup (a thread each)."""
        self.password: str | None = None
        self.dir: Path | None = None
        if tcp:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.sock.bind(("127.0.0.1", 0))
            self.port = self.sock.getsockname()[1]
            self.password = secrets.token_urlsafe(18)
        else:
            self.dir = Path(tempfile.mkdtemp(prefix="racesim-proxy-"))  # mode 0700
            self.port = PORT
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.bind(str(self.dir / f".s.PGSQL.{PORT}"))
        self.sock.listen(64)
        self._closed = False
        self._lock = threading.Lock()
        self.thread = threading.Thread(target=self._accept, name="racesim-proxy", daemon=True)
        self.thread.start()

    @property
    def host(self) -> str:
        return str(self.dir) if self.dir is not None else "127.0.0.1"

    def env(self) -> dict[str, str]:
        """Environment variables pointing a client at this listener."""
        env = {
            "PGHOST": self.host,
            "PGPORT": str(self.port),
            "PGUSER": USER,
            "PGDATABASE": DATABASE,
        }
        if self.password is not None:
            env["PGPASSWORD"] = self.password
            env["DATABASE_URL"] = (
                f"postgresql://{USER}:{quote(self.password, safe='')}@127.0.0.1:{self.port}"
                f"/{DATABASE}"
            )
        else:
            env["DATABASE_URL"] = (
                f"postgresql://{USER}@/{DATABASE}?host={quote(self.host, safe='')}&port={self.port}"
            )
        return env

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            if self.password is not None:  # TCP: a round's answer is not held back (Nagle)
                with contextlib.suppress(OSError):
                    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                if self._closed:
                    client.close()
                    return
                self.gate.accepted()
                thread = threading.Thread(
                    target=handshake,
                    args=(client, self.gate, self.connect, self.password),
                    name="racesim-proxy-startup",
                    daemon=True,
                )
                self.startups = [s for s in self.startups if s[0].is_alive()] + [(thread, client)]
                thread.start()

    def close(self) -> None:
        """Stop accepting, end every connection (client and server side), remove the socket."""
        with self._lock:
            self._closed = True
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.thread.join(timeout=5)
        for thread, client in self.startups:
            if thread.is_alive():
                with contextlib.suppress(OSError):
                    client.shutdown(socket.SHUT_RDWR)
            thread.join(timeout=5)
        with self.gate.cond:
            links = list(self.gate.links)
        for link in links:
            link.close()
        self.gate.close()
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)

    def pids(self) -> tuple[int, ...]:
        """The server backends of the connections still open."""
        with self.gate.cond:
            return tuple(link.pid for link in self.gate.links if link.pid and not link.closed)
