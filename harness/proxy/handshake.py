"""A client connection's startup: TLS refused, the run's password checked on TCP,
racesim's own server session opened, the client told it is in; or a cancel request
passed on. Run in a thread of its own per connection; the connection then joins
its gate (``Gate.joined``), whose waiting thread reads its rounds.
"""

from __future__ import annotations

import contextlib
import hmac
import secrets
import socket
import struct
from collections.abc import Callable

import psycopg

from racesim.proxy import framing as f
from racesim.proxy.gate import Gate
from racesim.proxy.link import KEYS, KEYS_LOCK, Link, cancel
from racesim.proxy.upstream import Upstream


def handshake(
    client: socket.socket,
    gate: Gate,
    connect: Callable[[dict[str, str]], Upstream],
    password: str | None,
) -> None:
    """Take ``client`` through its startup; it joins ``gate`` (or is closed)."""
    link: Link | None = None
    try:
        link = _startup(client, gate, connect, password)
    except f.Closed:
        pass
    except f.ProtocolError as exc:
        gate.fail(f"{gate.actor}: a connection to the proxy is not a PostgreSQL client ({exc})")
        with contextlib.suppress(OSError):
            client.sendall(f.error(f"racesim proxy: {exc}"))
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        gate.fail(f"{gate.actor}: racesim could not open the server session ({first})")
        with contextlib.suppress(OSError):
            client.sendall(f.error("racesim proxy: no server session", "08006"))
    except OSError:
        pass
    finally:
        if link is None:
            with contextlib.suppress(OSError):
                client.shutdown(socket.SHUT_RDWR)
            client.close()
        gate.joined(link)


def _startup(
    client: socket.socket,
    gate: Gate,
    connect: Callable[[dict[str, str]], Upstream],
    password: str | None,
) -> Link | None:
    reader = f.Reader(client)
    while True:
        code, rest = reader.startup()
        if code in (f.SSL_REQUEST, f.GSSENC_REQUEST):
            client.sendall(b"N")
            continue
        if code == f.CANCEL_REQUEST:
            if len(rest) == 8:
                cancel(*struct.unpack("!ii", rest))
            return None
        if code != f.PROTOCOL_3:
            raise f.ProtocolError(f"protocol version {code >> 16}.{code & 0xFFFF}")
        params = f.startup_parameters(rest)
        break
    if password is not None:
        client.sendall(f.auth_cleartext())
        answer = reader.message(frozenset({f.PASSWORD}))
        if not hmac.compare_digest(answer.body.rstrip(b"\0"), password.encode()):
            client.sendall(f.error("password authentication failed for the racesim proxy", "28P01"))
            raise f.ProtocolError("wrong password")
    if params.get("replication", "false").lower() not in ("false", "off", "no", "0"):
        raise f.ProtocolError("replication connections are not proxied")
    upstream = connect(params)
    secret = secrets.randbits(31)
    key = (upstream.pid, secret)
    with KEYS_LOCK:
        KEYS[key] = upstream
    link = Link(client, upstream, gate, key)
    link.inbuf += reader.buf  # what the client sent after its startup already
    link.short = not link.inbuf
    hello = [f.auth_ok()]
    hello += [f.parameter_status(n, v) for n, v in upstream.statuses()]
    hello += [f.key_data(upstream.pid, secret), f.ready()]
    try:
        client.sendall(b"".join(hello))
    except OSError:
        link.close()
        raise
    return link
