"""One client connection through the proxy: its startup, then its rounds through the gate.

One thread per connection: it reads the client's messages, groups them into rounds,
parks each at the gate until it is released, sends it, and copies what the server
answers back to the client until the round's ``ReadyForQuery`` (one thread, so no
two threads of a connection contend for the interpreter on every round). Rounds
that run no statement (a ``Parse``/``Describe``/``Sync`` that only prepares) pass
without waiting; a round released at a ``Flush`` goes on to its ``Sync``, and
``COPY`` data passes, with both sides watched. What the server says between
rounds (a notification) reaches the client with the next round's answer.
"""

from __future__ import annotations

import contextlib
import hmac
import secrets
import select
import socket
import struct
import threading
from collections.abc import Callable

import psycopg

from racesim.proxy import framing as f
from racesim.proxy.gate import Gate, LinkState, Round, RoundResult
from racesim.proxy.upstream import Upstream

RUNS_STATEMENTS = frozenset({f.QUERY, f.EXECUTE, f.FUNCTION_CALL})
ENDS_ROUND = frozenset({f.QUERY, f.SYNC, f.FUNCTION_CALL})
_NOTED = frozenset({f.READY, f.ERROR, f.COPY_IN, ord("C")})
"""Server messages whose content a round's result records (C is CommandComplete)."""

_KEYS: dict[tuple[int, int], Upstream] = {}
"""Cancel keys handed to clients -> the upstream session they cancel."""
_KEYS_LOCK = threading.Lock()


class Link:
    """A client connection of one actor (started with ``start``)."""

    def __init__(
        self,
        client: socket.socket,
        gate: Gate,
        connect: Callable[[dict[str, str]], Upstream],
        password: str | None,
    ) -> None:
        self.client = client
        self.gate = gate
        self.connect = connect
        self.password = password
        self.state = LinkState()
        self.upstream: Upstream | None = None
        self.key: tuple[int, int] | None = None
        self.prepared: dict[str, str] = {}
        """Statement name -> SQL, from the client's Parse messages."""
        self.thread = threading.Thread(target=self._main, name="racesim-proxy-link", daemon=True)

    def start(self) -> None:
        self.thread.start()

    # -- the client's side ----------------------------------------------------

    def _main(self) -> None:
        actor = self.gate.actor
        started = False
        try:
            if not self._startup():
                return
            started = True
            with self.gate.cond:
                self.gate.connecting -= 1
                self.gate.links.append(self.state)
                self.gate.cond.notify_all()
            self._rounds()
        except f.Closed:
            pass
        except f.ProtocolError as exc:
            what = "broke the protocol" if started else "is not a PostgreSQL client"
            self.gate.fail(f"{actor}: a connection to the proxy {what} ({exc})")
            with contextlib.suppress(OSError):
                self.client.sendall(f.error(f"racesim proxy: {exc}"))
        except psycopg.Error as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            self.gate.fail(f"{actor}: racesim could not open the server session ({first})")
            with contextlib.suppress(OSError):
                self.client.sendall(f.error("racesim proxy: no server session", "08006"))
        except OSError:
            pass
        finally:
            if not started:
                with self.gate.cond:
                    self.gate.connecting -= 1
            self.close()

    def _startup(self) -> bool:
        reader = f.Reader(self.client)
        while True:
            code, rest = reader.startup()
            if code in (f.SSL_REQUEST, f.GSSENC_REQUEST):
                self.client.sendall(b"N")
                continue
            if code == f.CANCEL_REQUEST:
                if len(rest) == 8:
                    _cancel(*struct.unpack("!ii", rest))
                return False
            if code != f.PROTOCOL_3:
                raise f.ProtocolError(f"protocol version {code >> 16}.{code & 0xFFFF}")
            params = f.startup_parameters(rest)
            break
        if self.password is not None:
            self.client.sendall(f.auth_cleartext())
            answer = reader.message(frozenset({f.PASSWORD}))
            if not hmac.compare_digest(answer.body.rstrip(b"\0"), self.password.encode()):
                self.client.sendall(
                    f.error("password authentication failed for the racesim proxy", "28P01")
                )
                raise f.ProtocolError("wrong password")
        if params.get("replication", "false").lower() not in ("false", "off", "no", "0"):
            raise f.ProtocolError("replication connections are not proxied")
        upstream = self.upstream = self.connect(params)
        self.state.pid = upstream.pid
        secret = secrets.randbits(31)
        self.key = (upstream.pid, secret)
        with _KEYS_LOCK:
            _KEYS[self.key] = upstream
        hello = [f.auth_ok()]
        hello += [f.parameter_status(n, v) for n, v in upstream.statuses()]
        hello += [f.key_data(upstream.pid, secret), f.ready()]
        self.client.sendall(b"".join(hello))
        self.reader = reader
        return True

    def _rounds(self) -> None:
        assert self.upstream is not None
        up = self.upstream.sock
        self.upbuf = b""
        self.open = False
        """The running round was sent up to a Flush: its messages up to Sync follow."""
        self.copy_in = False
        """The server waits for the client's COPY data."""
        self.gated = False
        """The running round waited at the gate (an open one that only prepared did not)."""
        while True:
            if self.state.running is None and not self.open:
                batch, ends = self._next_batch()
                if batch is None:
                    return
                gated = any(m.kind in RUNS_STATEMENTS for m in batch)
                sql = f.statements_of(batch, self.prepared)
                if gated:
                    self._park(Round(batch, sql, 1))  # release() marks it running
                else:
                    self._expect(batch)
                self.gated, self.open = gated, not ends
                up.sendall(b"".join(m.encode() for m in batch))
                continue
            if self.open or self.copy_in:
                self._exchange()
            else:
                self._relay()

    def _next_batch(self, first: f.Message | None = None) -> tuple[list[f.Message] | None, bool]:
        """The client's next messages up to a Query, Sync or Flush (None: it terminated)."""
        messages: list[f.Message] = []
        while True:
            msg, first = first or self.reader.message(f.FRONTEND), None
            if msg.kind == f.TERMINATE:
                return None, False
            if msg.kind == f.PASSWORD:
                raise f.ProtocolError("a password message after startup")
            if msg.kind in (f.COPY_DATA, f.COPY_DONE, f.COPY_FAIL):
                raise f.ProtocolError("COPY data outside COPY")
            messages.append(msg)
            if msg.kind in ENDS_ROUND:
                return messages, True
            if msg.kind == f.FLUSH:
                return messages, False

    def _exchange(self) -> None:
        """While a round is open or in COPY IN: whichever side speaks first is relayed."""
        assert self.upstream is not None
        up = self.upstream.sock
        if not self.reader.pending():
            ready, _, _ = select.select([self.client, up], [], [])
            if up in ready:
                self._relay()
                return
        msg = self.reader.message(f.FRONTEND)
        if msg.kind in (f.COPY_DATA, f.COPY_DONE, f.COPY_FAIL):
            self.copy_in = msg.kind == f.COPY_DATA
            up.sendall(msg.encode())
        elif self.open:  # the rest of the round, up to its Sync
            batch, ends = self._next_batch(msg)
            if batch is None:
                raise f.Closed()
            sql = f.statements_of(batch, self.prepared)
            if not self.gated and any(m.kind in RUNS_STATEMENTS for m in batch):
                self.gated = True  # it prepared first; it runs statements now
                self._park(Round(batch, sql, 1))
            self.open = not ends
            up.sendall(b"".join(m.encode() for m in batch))
        else:
            raise f.ProtocolError(f"message {chr(msg.kind)!r} while the server copies in")

    def _park(self, round_: Round) -> None:
        state = self.state
        with self.gate.cond:
            state.parked = round_
            self.gate.cond.notify_all()
        state.go.acquire()  # until released (or closed)
        if state.closed:  # woken by close: the round is never sent
            raise f.Closed()

    def _expect(self, batch: list[f.Message]) -> None:
        """A round that runs no statement is running from now on (before it is sent)."""
        state = self.state
        with self.gate.cond:
            state.running = Round(batch, (), 1)
            state.target = state.readies + 1

    # -- the server's side ----------------------------------------------------

    def _relay(self) -> None:
        """Copy what the server has said to the client (waiting for it); note where
        the running round ends."""
        assert self.upstream is not None
        chunk = self.upstream.sock.recv(65536)
        if not chunk:
            raise f.Closed()
        state = self.state
        buf = self.upbuf + chunk if self.upbuf else chunk
        unpack = struct.unpack_from
        at, end, readies = 0, len(buf), 0
        while end - at >= 5:
            kind = buf[at]
            (length,) = unpack("!I", buf, at + 1)
            if end - at < 1 + length:
                break
            if kind in _NOTED:
                if kind == f.READY:
                    readies += 1
                elif kind == f.COPY_IN:
                    self.copy_in = True
                    at += 1 + length
                    continue
                _note(state.result, kind, buf[at + 5 : at + 1 + length])
            at += 1 + length
        if at:
            self.client.sendall(buf if at == end else buf[:at])
        self.upbuf = buf[at:]
        if readies:
            self.copy_in = False
            with self.gate.cond:
                state.readies += readies
                if state.running is not None and state.readies >= state.target:
                    state.running = None
                self.gate.cond.notify_all()

    def close(self) -> None:
        with self.gate.cond:
            if self.state.closed:
                return
            self.state.closed = True
            self.state.let_go()
            self.gate.cond.notify_all()
        if self.key is not None:
            with _KEYS_LOCK:
                _KEYS.pop(self.key, None)
        with contextlib.suppress(OSError):
            self.client.shutdown(socket.SHUT_RDWR)
        self.client.close()
        if self.upstream is not None:
            self.upstream.close()


def _note(result: RoundResult, kind: int, body: bytes) -> bool:
    if kind == f.READY:
        result.status = body[:1].decode() or "I"
        return True
    if kind == f.ERROR:
        fields: dict[str, str] = {}
        for part in body.split(b"\0"):
            if part:
                fields[chr(part[0])] = part[1:].decode("utf-8", "replace")
        if result.error is None:
            result.error = (fields.get("C", ""), fields.get("M", ""))
        return False
    result.tags.append(body.rstrip(b"\0").decode("utf-8", "replace"))
    return False


def _cancel(pid: int, secret: int) -> None:
    with _KEYS_LOCK:
        upstream = _KEYS.get((pid, secret))
    if upstream is not None:
        upstream.cancel()
