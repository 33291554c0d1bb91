"""A client's messages read into batches: up to a ``Query``, ``Sync`` or ``Flush``.

Only message headers are read, and the SQL of ``Query``, ``Parse`` and ``Bind``; a
message no round may hold is a protocol error (``Terminate`` ends the connection).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from racesim.proxy import framing as f

RUNS_STATEMENTS = frozenset({f.QUERY, f.EXECUTE, f.FUNCTION_CALL})
ENDS_ROUND = frozenset({f.QUERY, f.SYNC, f.FUNCTION_CALL})
COPY_MESSAGES = frozenset({f.COPY_DATA, f.COPY_DONE, f.COPY_FAIL})
_HEADER = struct.Struct("!I")


@dataclass
class Batch:
    """A client's messages up to a ``Query``, ``Sync`` or ``Flush``."""

    data: bytes
    sql: tuple[str, ...]
    runs: bool
    """It runs statements (a ``Query``, ``Execute`` or ``FunctionCall``)."""
    ends: bool
    """It ends a round (not at a ``Flush``)."""
    listens: bool = False
    """Its SQL may LISTEN (says ``listen`` somewhere)."""


TERMINATED = Batch(b"", (), False, True)


_PLAIN = frozenset(f.FRONTEND - {f.TERMINATE, f.PASSWORD, *COPY_MESSAGES})
"""Client messages a round may hold."""
_QUERY, _PARSE, _BIND, _FLUSH = f.QUERY, f.PARSE, f.BIND, f.FLUSH


def take_batch(buf: bytearray, prepared: dict[str, str]) -> Batch | None:
    """The first whole batch in ``buf`` (removed from it); None when it is not all there.
    ``prepared`` learns each ``Parse`` on the way (statement name -> SQL)."""
    unpack = _HEADER.unpack_from
    at, end, sql, runs, listens = 0, len(buf), [], False, False
    while end - at >= 5:
        kind = buf[at]
        (length,) = unpack(buf, at + 1)
        if kind not in _PLAIN or length < 4 or length > f.MAX_MESSAGE:
            return _refused(buf, at, kind, length)
        stop = at + 1 + length
        if end < stop:
            return None
        if kind == _BIND:  # the portal's name, then the statement's
            name = _string(buf, _string(buf, at + 5, stop)[1], stop)[0]
            sql.append(prepared.get(name, ""))
        elif kind == _QUERY:
            text = _string(buf, at + 5, stop)[0]
            sql.append(text)
            runs, listens = True, listens or "listen" in text.lower()
        elif kind == _PARSE:
            name, after = _string(buf, at + 5, stop)
            text = prepared[name] = _string(buf, after, stop)[0]
            listens = listens or "listen" in text.lower()
        elif kind in RUNS_STATEMENTS:
            runs = True
        at = stop
        if kind in ENDS_ROUND or kind == _FLUSH:
            data = bytes(buf[:at])
            del buf[:at]
            return Batch(data, tuple(sql), runs, kind != _FLUSH, listens)
    return None


def _string(buf: bytearray, start: int, stop: int) -> tuple[str, int]:
    """The NUL-ended string at ``start`` of a message ending at ``stop``; where it ends."""
    end = buf.find(0, start, stop)
    if end < 0:
        raise f.ProtocolError("string not terminated")
    return buf[start:end].decode("utf-8", "replace"), end + 1


def _refused(buf: bytearray, at: int, kind: int, length: int) -> Batch:
    """A message no round may hold: Terminate ends the connection, the rest are errors."""
    if kind == f.TERMINATE:
        del buf[:]
        return TERMINATED
    if kind == f.PASSWORD:
        raise f.ProtocolError("a password message after startup")
    if kind in COPY_MESSAGES:
        raise f.ProtocolError("COPY data outside COPY")
    if kind not in f.FRONTEND:
        raise f.ProtocolError(f"unexpected message type {chr(kind)!r}")
    raise f.ProtocolError(f"message {chr(kind)!r} of length {length}")


def whole(buf: bytearray) -> bool:
    """``buf`` holds at least one whole client message (its header is checked as
    soon as it is there)."""
    if len(buf) < 5:
        return False
    kind = buf[0]
    if kind not in f.FRONTEND:
        raise f.ProtocolError(f"unexpected message type {chr(kind)!r}")
    length: int = _HEADER.unpack_from(buf, 1)[0]
    if length < 4 or length > f.MAX_MESSAGE:
        raise f.ProtocolError(f"message {chr(kind)!r} of length {length}")
    return len(buf) >= 1 + length
