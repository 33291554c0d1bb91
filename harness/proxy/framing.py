"""PostgreSQL's wire protocol (version 3), as far as a proxy in front of a server needs it.

A message is a type byte and a length-prefixed body; the startup packet has no type
byte. Here: reading whole messages during the startup, and the messages the proxy
itself sends (the rounds are read in ``racesim.proxy.link``).
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

PROTOCOL_3 = 196608
SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
CANCEL_REQUEST = 80877102

MAX_STARTUP = 10_000
"""Bytes a startup packet may have (PostgreSQL's own limit)."""
MAX_MESSAGE = 1 << 30
"""Bytes any other message may have (PostgreSQL's own limit)."""

# Client (frontend) message types.
QUERY, PARSE, BIND, DESCRIBE, EXECUTE, SYNC, FLUSH, CLOSE = b"QPBDESHC"
TERMINATE, COPY_DATA, COPY_DONE, COPY_FAIL, FUNCTION_CALL, PASSWORD = b"Xdcf" + b"Fp"
FRONTEND = frozenset(b"QPBDESHCXdcfFp")

# Server (backend) message types.
READY, ERROR, COPY_IN, AUTH, KEY_DATA, PARAMETER_STATUS = b"ZEGRKS"


class ProtocolError(Exception):
    """The peer broke the protocol (the message says how)."""


class Closed(Exception):
    """The peer closed the connection."""


@dataclass(frozen=True)
class Message:
    kind: int
    body: bytes

    def encode(self) -> bytes:
        return bytes((self.kind,)) + struct.pack("!I", len(self.body) + 4) + self.body


def message(kind: int, body: bytes = b"") -> bytes:
    return bytes((kind,)) + struct.pack("!I", len(body) + 4) + body


class Reader:
    """Buffered reads of whole messages from a socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()

    def _fill(self, n: int) -> None:
        while len(self.buf) < n:
            chunk = self.sock.recv(max(65536, n - len(self.buf)))
            if not chunk:
                raise Closed()
            self.buf += chunk

    def exact(self, n: int) -> bytes:
        self._fill(n)
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def startup(self) -> tuple[int, bytes]:
        """A startup-phase packet: (code, rest of the body)."""
        (length,) = struct.unpack("!I", self.exact(4))
        if length < 8 or length > MAX_STARTUP:
            raise ProtocolError(f"startup packet of {length} bytes is not PostgreSQL's")
        body = self.exact(length - 4)
        (code,) = struct.unpack("!I", body[:4])
        return code, body[4:]

    def message(self, allowed: frozenset[int] | None = None) -> Message:
        self._fill(5)
        kind = self.buf[0]
        if allowed is not None and kind not in allowed:
            raise ProtocolError(f"unexpected message type {chr(kind)!r}")
        (length,) = struct.unpack("!I", bytes(self.buf[1:5]))
        if length < 4 or length > MAX_MESSAGE:
            raise ProtocolError(f"message {chr(kind)!r} of length {length}")
        self._fill(1 + length)
        body = bytes(self.buf[5 : 1 + length])
        del self.buf[: 1 + length]
        return Message(kind, body)

    def pending(self) -> bool:
        """Bytes are buffered already (a whole message may be)."""
        return bool(self.buf)


def startup_parameters(rest: bytes) -> dict[str, str]:
    """The name/value pairs of a StartupMessage body (after the protocol code)."""
    parts = rest.split(b"\0")
    if len(parts) < 2 or parts[-1] != b"" or parts[-2] != b"":
        raise ProtocolError("startup parameters not terminated")
    items = parts[:-2]
    if len(items) % 2:
        raise ProtocolError("startup parameter without a value")
    try:
        return {items[i].decode(): items[i + 1].decode() for i in range(0, len(items), 2)}
    except UnicodeDecodeError:
        raise ProtocolError("startup parameters are not UTF-8") from None


def auth_ok() -> bytes:
    return message(AUTH, struct.pack("!I", 0))


def auth_cleartext() -> bytes:
    return message(AUTH, struct.pack("!I", 3))


def parameter_status(name: str, value: str) -> bytes:
    return message(PARAMETER_STATUS, name.encode() + b"\0" + value.encode() + b"\0")


def key_data(pid: int, secret: int) -> bytes:
    return message(KEY_DATA, struct.pack("!ii", pid, secret))


def ready(status: bytes = b"I") -> bytes:
    return message(READY, status)


def error(message_text: str, code: str = "08P01", severity: str = "FATAL") -> bytes:
    """An ErrorResponse the client shows (SQLSTATE ``code``)."""
    fields = (
        b"S"
        + severity.encode()
        + b"\0"
        + b"V"
        + severity.encode()
        + b"\0"
        + b"C"
        + code.encode()
        + b"\0"
        + b"M"
        + message_text.encode()
        + b"\0"
        + b"\0"
    )
    return message(ERROR, fields)
