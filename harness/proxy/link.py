"""One client connection through the proxy, after its startup: its rounds.

No thread of its own. The thread waiting at the gate (``Gate.wait_for``) reads what
the client sent, without waiting for more: a round that runs statements is parked
there; one that runs none (a ``Parse``/``Describe``/``Sync`` that only prepares)
is sent at once, and that thread relays the answer. The thread that releases a
parked round (``Gate.release``) sends it and relays the server's answer to the client
up to the round's ``ReadyForQuery`` itself. So a round through the proxy wakes no
thread but the one that drives it.

A round released at a ``Flush`` goes on to its ``Sync``, and ``COPY`` data passes,
with both sides watched. Bytes are forwarded as they came, in blocks (the server's
before they are read); only message headers are read, the SQL of ``Query``,
``Parse`` and ``Bind``, and what ends a round. What the server says between rounds
of a connection that listens (a notification) goes to the client as it arrives
(``racesim.proxy.idle``).
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import threading
from dataclasses import dataclass, field
from typing import Protocol

from racesim.proxy import framing as f
from racesim.proxy.batches import COPY_MESSAGES, TERMINATED, take_batch, whole
from racesim.proxy.rounds import Round, RoundResult
from racesim.proxy.upstream import Upstream

_NOTED = frozenset({f.READY, f.ERROR, f.COPY_IN, ord("C")})
"""Server messages whose content a round's result records (C is CommandComplete)."""
_HEADER = struct.Struct("!I")
_READY, _COMPLETE = f.READY, ord("C")

KEYS: dict[tuple[int, int], Upstream] = {}
"""Cancel keys handed to clients -> the upstream session they cancel."""
KEYS_LOCK = threading.Lock()


class Gate(Protocol):
    """What a link tells its gate (``racesim.proxy.gate.Gate``)."""

    actor: str

    def park(self, link: Link, round_: Round) -> None: ...
    def watch(self, link: Link) -> None: ...
    def unwatch(self, link: Link) -> None: ...
    def closing(self, link: Link) -> bool: ...
    def fail(self, problem: str) -> None: ...


@dataclass
class Link:
    """A client connection of one actor and its server session."""

    client: socket.socket
    upstream: Upstream
    gate: Gate
    key: tuple[int, int]
    pid: int = 0
    """The upstream backend's pid (its BackendKeyData)."""
    parked: Round | None = None
    running: Round | None = None
    result: RoundResult = field(default_factory=RoundResult)
    readies: int = 0
    """ReadyForQuery messages relayed to the client so far."""
    target: int = 0
    """The ``readies`` count at which the running round is done."""
    closed: bool = False
    inbuf: bytearray = field(default_factory=bytearray)
    """Client bytes not yet sent on."""
    tail: bytes = b""
    """The server's last bytes short of a whole message (sent on already; read for
    what they say once the rest has come)."""
    open: bool = False
    """The current round was sent up to a Flush: its messages up to Sync follow."""
    copy_in: bool = False
    """The server waits for the client's COPY data."""
    gated: bool = False
    """The current round waited at the gate (an open one that only prepared did not)."""
    short: bool = True
    """What ``inbuf`` holds is short of a round: the client has more to send."""
    prepared: dict[str, str] = field(default_factory=dict)
    """Statement name -> SQL, from the client's Parse messages."""
    listens: bool = False
    """It has sent a LISTEN: the idle watch relays what comes between its rounds."""
    lock: threading.Lock = field(default_factory=threading.Lock)
    """Held by the thread doing a round (and by the idle watch while it relays)."""

    def __post_init__(self) -> None:
        self.pid = self.upstream.pid
        self.up = self.upstream.sock

    # -- driven by the gate ---------------------------------------------------

    def has_round(self) -> bool:
        """A whole round may be buffered already (no need to wait for the client)."""
        return not self.short

    def take(self, read: bool) -> None:
        """Act on what the client sent: read it first if ``read`` (the socket is
        readable), then park a round that runs statements or pass one that does not.
        Never waits for the client."""
        try:
            self._take(read)
        except (f.Closed, f.ProtocolError, OSError, ValueError) as exc:
            self._failed(exc)

    def run(self) -> None:
        """The released round: send it, relay the answer until its ReadyForQuery."""
        self._begin()
        try:
            assert self.running is not None
            self.up.sendall(self.running.data)
            self._finish()
        except (f.Closed, f.ProtocolError, OSError, ValueError) as exc:
            self._failed(exc)
        finally:
            self._end()

    def _begin(self) -> None:
        """A round starts: the idle watch lets go of the server side."""
        self.lock.acquire()
        if self.listens:
            self.gate.unwatch(self)

    def _end(self) -> None:
        if self.listens and not self.closed and self.running is None:
            self.gate.watch(self)
        self.lock.release()

    def relay_idle(self) -> None:
        """Between rounds: send on what the server said (a notification) now."""
        if not self.lock.acquire(blocking=False):
            return  # a round has the connection; it relays
        try:
            if self.closed or self.running is not None:
                return
            try:
                chunk = self.up.recv(65536, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return
            if chunk:
                self._pass(chunk, RoundResult())
            else:  # the server ended the session: the next round finds it
                self.gate.unwatch(self)
        except OSError:
            self.gate.unwatch(self)
        finally:
            self.lock.release()

    def _failed(self, exc: Exception) -> None:
        """The connection ends: the client closed, broke the protocol (named), or a
        socket failed (ValueError: one closed under us)."""
        if isinstance(exc, f.ProtocolError):
            self.gate.fail(
                f"{self.gate.actor}: a connection to the proxy broke the protocol ({exc})"
            )
            with contextlib.suppress(OSError):
                self.client.sendall(f.error(f"racesim proxy: {exc}"))
        self.close()

    def _take(self, read: bool) -> None:
        if read:
            self._fill()
        while self.parked is None and not self.closed:
            batch = take_batch(self.inbuf, self.prepared)
            if batch is None:
                self.short = True
                return
            if batch is TERMINATED:
                raise f.Closed()
            self.open = not batch.ends
            if batch.listens:
                self.listens = True  # notifications may come between rounds from now on
            if batch.runs:
                self.gated = True
                self.short = not self.inbuf
                self.gate.park(self, Round(batch.data, batch.sql, 1))
                return
            self.gated = False
            self._begin()
            try:
                self._start(Round(batch.data, (), 1))
                self.up.sendall(batch.data)
                self._finish()
            finally:
                self._end()

    def _finish(self) -> None:
        """Relay until the running round is done (or, one that only prepared, parked)."""
        recv, result = self.up.recv, self.result
        while self.running is not None and not self.closed:
            if self.open or self.copy_in:
                self._exchange()
                continue
            chunk = recv(65536)
            if not chunk:
                raise f.Closed()
            self._pass(chunk, result)

    def _start(self, round_: Round) -> None:
        """A round that runs no statement is running from now on (before it is sent)."""
        self.target = self.readies + round_.syncs
        self.running = round_

    def _answered(self, readies: int) -> None:
        """``readies`` ReadyForQuery messages went back to the client."""
        self.readies += readies
        if self.running is not None and self.readies >= self.target:
            self.running = None

    def _fill(self) -> None:
        chunk = self.client.recv(65536)
        if not chunk:
            raise f.Closed()
        self.inbuf += chunk
        self.short = False

    def _exchange(self) -> None:
        """While a round is open or in COPY IN: whichever side speaks first is relayed."""
        if whole(self.inbuf) and self._from_client():
            return
        ready, _, _ = select.select([self.client, self.up], [], [])
        if self.up in ready:
            self._relay()
        else:
            self._fill()

    def _from_client(self) -> bool:
        """Send on the client's COPY data or the rest of its open round; False when
        what is buffered is not all there yet."""
        kind, buf = self.inbuf[0], self.inbuf
        if kind in COPY_MESSAGES:
            at = 0
            while len(buf) - at >= 5 and buf[at] in COPY_MESSAGES:
                (length,) = _HEADER.unpack_from(buf, at + 1)
                if len(buf) - at < 1 + length:
                    break
                self.copy_in = buf[at] == f.COPY_DATA
                at += 1 + length
            self.up.sendall(buf[:at])
            del buf[:at]
            return True
        if not self.open:
            raise f.ProtocolError(f"message {chr(kind)!r} while the server copies in")
        batch = take_batch(buf, self.prepared)  # the rest of the round, up to its Sync
        if batch is None:
            return False
        if batch is TERMINATED:
            raise f.Closed()
        self.open = not batch.ends
        if not self.gated and batch.runs:
            self.gated = True  # it prepared first; it runs statements now
            self.gate.park(self, Round(batch.data, batch.sql, 1))
        else:
            self.up.sendall(batch.data)
        return True

    def _relay(self) -> None:
        """Copy what the server says to the client (waiting for it); note where the
        running round ends."""
        chunk = self.up.recv(65536)
        if not chunk:
            raise f.Closed()
        self._pass(chunk, self.result)

    def _pass(self, chunk: bytes, result: RoundResult) -> None:
        """Send ``chunk`` on to the client at once, then read what it says."""
        self.client.sendall(chunk)
        buf = self.tail + chunk if self.tail else chunk
        at = self._scan(buf, result)
        self.tail = buf[at:] if at < len(buf) else b""

    def _scan(self, buf: bytes, result: RoundResult) -> int:
        """Note the server messages of ``buf`` in ``result``; the end of its last whole one."""
        unpack = _HEADER.unpack_from
        at, end, readies = 0, len(buf), 0
        while end - at >= 5:
            kind = buf[at]
            (length,) = unpack(buf, at + 1)
            if end - at < 1 + length:
                break
            if kind in _NOTED:
                if kind == _READY:
                    readies += 1
                    result.status = chr(buf[at + 5]) if length > 4 else "I"
                elif kind == _COMPLETE:
                    result.tags.append(buf[at + 5 : at + length].decode("utf-8", "replace"))
                elif kind == f.COPY_IN:
                    self.copy_in = True
                else:
                    note(result, kind, buf[at + 5 : at + 1 + length])
            at += 1 + length
        if readies:
            self.copy_in = False
            self._answered(readies)
        return at

    def close(self) -> None:
        """End both sides (from any thread); a thread relaying for it stops."""
        if not self.gate.closing(self):
            return
        self.gate.unwatch(self)
        with KEYS_LOCK:
            KEYS.pop(self.key, None)
        with contextlib.suppress(OSError):
            self.client.shutdown(socket.SHUT_RDWR)
        self.client.close()
        self.upstream.close(wait=self.running is None)  # a round's lock wait is not waited for


def note(result: RoundResult, kind: int, body: bytes) -> None:
    """An ErrorResponse: the first one's (SQLSTATE, message) is the round's error."""
    fields: dict[str, str] = {}
    for part in body.split(b"\0"):
        if part:
            fields[chr(part[0])] = part[1:].decode("utf-8", "replace")
    if result.error is None:
        result.error = (fields.get("C", ""), fields.get("M", ""))


def cancel(pid: int, secret: int) -> None:
    with KEYS_LOCK:
        upstream = KEYS.get((pid, secret))
    if upstream is not None:
        upstream.cancel()
