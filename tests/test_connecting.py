"""A connect that a signal interrupts leaves no connection open while racesim cleans up.

A connection left half-made (its backend waiting in authentication) would hold up
the ``DROP DATABASE`` of racesim's cleanup until the server's authentication_timeout,
a minute: ``racesim run`` then did not stop on SIGTERM or Ctrl-C for that long.
"""

from __future__ import annotations

import signal
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from racesim.engine.sessions import open_session
from racesim.provision import connecting, provide
from racesim.spec.sessions import connect_all as _connect_all


class _SilentServer:
    """Takes connections on a unix socket and never answers: a connect to it waits."""

    def __init__(self, folder: Path) -> None:
        self.conninfo = f"host={folder} port=5432 user=racesim dbname=racesim"
        self._listener = socket.socket(socket.AF_UNIX)
        self._listener.bind(str(folder / ".s.PGSQL.5432"))
        self._listener.listen()
        self._open = 0
        self._accepted = threading.Semaphore(0)
        self._lock = threading.Lock()
        self._all_closed = threading.Condition(self._lock)
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                peer, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self._open += 1
            self._accepted.release()
            threading.Thread(target=self._read, args=(peer,), daemon=True).start()

    def _read(self, peer: socket.socket) -> None:
        with peer:
            while peer.recv(4096):  # the startup packet; end-of-file once the client lets go
                pass
        with self._all_closed:
            self._open -= 1
            self._all_closed.notify_all()

    def wait_accepted(self, count: int) -> None:
        for _ in range(count):
            assert self._accepted.acquire(timeout=10), "no connection came"

    def wait_all_closed(self, timeout: float) -> bool:
        with self._all_closed:
            return self._all_closed.wait_for(lambda: self._open == 0, timeout)

    def close(self) -> None:
        self._listener.close()


@pytest.fixture
def silent(tmp_path: Path) -> Iterator[_SilentServer]:
    server = _SilentServer(tmp_path)
    yield server
    server.close()


CONNECTS: dict[str, tuple[Callable[[str], Any], int]] = {
    "connect": (lambda c: connecting.connect(c), 1),
    "provide.connect": (lambda c: provide.connect(c, autocommit=True), 1),
    "open_session": (open_session, 1),
    "spec": (lambda c: _connect_all(c, 3, timeout=30), 3),
}


@pytest.mark.parametrize("interrupt", [SystemExit, KeyboardInterrupt])
@pytest.mark.parametrize("how", sorted(CONNECTS))
def test_an_interrupted_connect_closes_its_connection_at_once(
    silent: _SilentServer, how: str, interrupt: type[BaseException]
) -> None:
    connect, count = CONNECTS[how]

    def handler(signum: int, frame: FrameType | None) -> None:
        raise interrupt  # as racesim's handlers do for SIGTERM and Ctrl-C

    previous = signal.signal(signal.SIGALRM, handler)
    try:
        # once the connect waits for the server's answer
        threading.Thread(
            target=lambda: (silent.wait_accepted(count), signal.setitimer(signal.ITIMER_REAL, 0.1)),
            daemon=True,
        ).start()
        with pytest.raises(interrupt):
            try:
                connect(silent.conninfo)
            finally:
                # the cleanup on the way out runs while the exception is alive
                assert silent.wait_all_closed(5), "the half-made connection is still open"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
