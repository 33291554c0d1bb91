"""One client connection through the proxy: its startup, then its rounds through the gate.

Two threads per connection: this one reads the client's messages, groups them into
rounds and parks each at the gate until it is released; a relay thread copies
everything the server says back to the client and notes where rounds end.
Rounds that run no statement (a ``Parse``/``Describe``/``Sync`` that only prepares)
and ``COPY`` data pass without waiting.
"""

from __future__ import annotations

import contextlib
import hmac
import secrets
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
_NOTED = frozenset({f.READY, f.ERROR, ord("C")})
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
        threading.Thread(target=self._relay, name="racesim-proxy-relay", daemon=True).start()
        return True

    def _rounds(self) -> None:
        assert self.upstream is not None
        up = self.upstream.sock
        messages: list[f.Message] = []
        continuing = False
        """A released round goes on (it was released at a Flush): no second wait."""
        while True:
            msg = self.reader.message(f.FRONTEND)
            if msg.kind == f.TERMINATE:
                return
            if msg.kind in (f.COPY_DATA, f.COPY_DONE, f.COPY_FAIL):
                up.sendall(msg.encode())  # the running round's COPY data
                continue
            if msg.kind == f.PASSWORD:
                raise f.ProtocolError("a password message after startup")
            messages.append(msg)
            if msg.kind not in ENDS_ROUND and msg.kind != f.FLUSH:
                continue
            ends = msg.kind in ENDS_ROUND
            batch, messages = messages, []
            sql = f.statements_of(batch, self.prepared)
            if continuing or not any(m.kind in RUNS_STATEMENTS for m in batch):
                if ends and continuing:
                    continuing = False
                elif ends:  # its answer is awaited here (counted before it can come)
                    self._expect(batch)
                    up.sendall(b"".join(m.encode() for m in batch))
                    self._await_unparked()
                    continue
                up.sendall(b"".join(m.encode() for m in batch))
                continue
            self._park(Round(batch, sql, 1))
            up.sendall(b"".join(m.encode() for m in batch))
            continuing = not ends

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

    def _await_unparked(self) -> None:
        """Until the server has answered the round ``_expect`` started."""
        state = self.state
        with self.gate.cond:
            while state.running is not None and not state.closed:
                self.gate.cond.wait()

    # -- the server's side ----------------------------------------------------

    def _relay(self) -> None:
        assert self.upstream is not None
        up, client, state, gate = self.upstream.sock, self.client, self.state, self.gate
        unpack = struct.unpack_from
        buf = b""
        try:
            while True:
                chunk = up.recv(65536)
                if not chunk:
                    break
                buf = buf + chunk if buf else chunk
                at, end, readies = 0, len(buf), 0
                while end - at >= 5:
                    kind = buf[at]
                    (length,) = unpack("!I", buf, at + 1)
                    if end - at < 1 + length:
                        break
                    if kind in _NOTED:
                        if kind == f.READY:
                            readies += 1
                        _note(state.result, kind, buf[at + 5 : at + 1 + length])
                    at += 1 + length
                if at:
                    client.sendall(buf if at == end else buf[:at])
                    buf = buf[at:]
                if readies:
                    with gate.cond:
                        state.readies += readies
                        if state.running is not None and state.readies >= state.target:
                            state.running = None
                        gate.cond.notify_all()
        except OSError:
            pass
        finally:
            self.close()

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
