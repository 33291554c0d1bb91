"""racesim's PostgreSQL proxy: startup, authentication, TLS refusal and round gating,
with real clients (psql and psycopg) in front of a real server."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import struct
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from racesim.proxy import framing
from racesim.proxy.gate import Gate
from racesim.proxy.link import Link
from racesim.proxy.listener import Listener
from racesim.proxy.upstream import open_upstream


class AutoRelease:
    """Releases every round parked at ``gate`` (in arrival order), noting its SQL; each
    round is sent and answered on a thread of its own, so a round waiting on a lock
    does not hold up the client's other connections (as isolationtester's)."""

    def __init__(self, gate: Gate) -> None:
        self.gate = gate
        self.seen: list[tuple[str, ...]] = []
        self.stopped = False
        self.sending: set[int] = set()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _next(self) -> Link | None:
        parked = [
            link
            for link in self.gate.links
            if link.parked is not None and not link.closed and id(link) not in self.sending
        ]
        return min(parked, key=lambda link: link.parked.order if link.parked else 0, default=None)

    def _loop(self) -> None:
        while not self.stopped:
            if self.gate.wait_for(lambda: self.stopped or self._next() is not None, 0.05):
                with self.gate.cond:
                    link = self._next()
                    if link is None:
                        continue
                    self.sending.add(id(link))
                threading.Thread(target=self._release, args=(link,), daemon=True).start()

    def _release(self, link: Link) -> None:
        self.seen.append(self.gate.release(link).sql)
        with self.gate.cond:
            self.sending.discard(id(link))
        self.gate.notify()

    def stop(self) -> None:
        self.stopped = True
        self.gate.notify()
        self.thread.join(timeout=5)


def listener(conninfo: str, actor: str = "a", tcp: bool = False) -> tuple[Gate, Listener]:
    gate = Gate(actor)
    return gate, Listener(gate, lambda p: open_upstream(conninfo, p, actor), tcp=tcp)


@pytest.fixture
def unix(conninfo: str) -> Iterator[tuple[Gate, Listener]]:
    gate, lst = listener(conninfo)
    yield gate, lst
    lst.close()


def env_of(lst: Listener) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    return {**clean, **lst.env()}


def test_run_directory_is_private_and_removed(unix: tuple[Gate, Listener]) -> None:
    _, lst = unix
    assert lst.dir is not None
    assert stat.S_IMODE(lst.dir.stat().st_mode) == 0o700
    assert (lst.dir / ".s.PGSQL.5432").is_socket()
    lst.close()
    assert not lst.dir.exists()


def test_psql_through_the_proxy(unix: tuple[Gate, Listener]) -> None:
    if shutil.which("psql") is None:
        pytest.skip("no psql: apt-get install postgresql-client")
    gate, lst = unix
    releaser = AutoRelease(gate)
    try:
        done = subprocess.run(
            [
                "psql",
                "-X",
                "-A",
                "-t",
                "-c",
                "SELECT 40 + 2",
                "-c",
                "SELECT current_setting('racesim.actor')",
            ],
            env=env_of(lst),
            capture_output=True,
            text=True,
            timeout=30,
        )
    finally:
        releaser.stop()
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["42", "a"]
    assert ("SELECT 40 + 2",) in releaser.seen


def test_psycopg_extended_protocol_and_copy(unix: tuple[Gate, Listener]) -> None:
    gate, lst = unix
    releaser = AutoRelease(gate)
    try:
        with psycopg.connect(lst.env()["DATABASE_URL"], application_name="app1") as conn:
            assert conn.execute("SELECT %s::int * 2", (21,)).fetchone() == (42,)
            assert conn.execute("SHOW application_name").fetchone() == ("app1",)
            conn.execute("CREATE TEMP TABLE t (a int)")
            with conn.cursor().copy("COPY t FROM STDIN") as copy:
                for i in range(100):
                    copy.write_row((i,))
            assert conn.execute("SELECT sum(a) FROM t").fetchone() == (4950,)
            with pytest.raises(psycopg.errors.DivisionByZero):
                conn.execute("SELECT 1 / 0")
            conn.rollback()
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        releaser.stop()
    assert ("SELECT $1::int * 2",) in releaser.seen


def test_a_round_waits_at_the_gate_until_released(
    unix: tuple[Gate, Listener], conn: psycopg.Connection[Any]
) -> None:
    gate, lst = unix
    conn.execute("CREATE TABLE gated (a int)")
    done: list[Any] = []

    def client() -> None:
        with psycopg.connect(lst.env()["DATABASE_URL"], autocommit=True) as c:
            c.execute("INSERT INTO gated VALUES (1)")
            done.append(True)

    thread = threading.Thread(target=client, daemon=True)
    thread.start()
    assert gate.wait_for(lambda: gate.oldest() is not None, 10)
    time.sleep(0.2)
    assert conn.execute("SELECT count(*) FROM gated").fetchone() == (0,)
    link = gate.oldest()
    assert link is not None and link.parked is not None
    assert link.parked.sql == ("INSERT INTO gated VALUES (1)",)
    gate.release(link)
    assert gate.wait_for(lambda: link.running is None, 10)
    assert link.result.tags == ["INSERT 0 1"]
    thread.join(timeout=10)
    assert done == [True]
    assert conn.execute("SELECT count(*) FROM gated").fetchone() == (1,)


def test_a_notification_reaches_an_idle_client_as_it_arrives(
    unix: tuple[Gate, Listener], conn: psycopg.Connection[Any]
) -> None:
    """Between its rounds a client hears what it listens for when it is sent, not
    only with its next round's answer (it may send none while it waits)."""
    gate, lst = unix
    releaser = AutoRelease(gate)
    try:
        with psycopg.connect(lst.env()["DATABASE_URL"], autocommit=True) as c:
            c.execute("LISTEN racesim_channel")
            conn.execute("NOTIFY racesim_channel, 'hello'")
            got = [n.payload for n in c.notifies(timeout=10, stop_after=1)]
            conn.execute("SELECT pg_notify('racesim_channel', 'again')")
            got += [n.payload for n in c.notifies(timeout=10, stop_after=1)]
            assert c.execute("SELECT 1").fetchone() == (1,)
    finally:
        releaser.stop()
    assert got == ["hello", "again"]


def test_tls_requests_are_answered_n(unix: tuple[Gate, Listener]) -> None:
    _, lst = unix
    assert lst.dir is not None
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(lst.dir / ".s.PGSQL.5432"))
        for code in (framing.SSL_REQUEST, framing.GSSENC_REQUEST):
            s.sendall(struct.pack("!II", 8, code))
            assert s.recv(1) == b"N"


def test_tcp_needs_the_run_password(conninfo: str) -> None:
    gate, lst = listener(conninfo, tcp=True)
    releaser = AutoRelease(gate)
    try:
        env = lst.env()
        assert env["PGHOST"] == "127.0.0.1" and lst.sock.getsockname()[0] == "127.0.0.1"
        with psycopg.connect(env["DATABASE_URL"], sslmode="prefer") as c:
            assert c.execute("SELECT 1").fetchone() == (1,)
            # Small answers are not held back waiting for an acknowledgement (Nagle).
            client = gate.links[0].client
            assert client.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(
                host="127.0.0.1",
                port=lst.port,
                user="racesim",
                dbname="racesim",
                password="wrong",
                sslmode="disable",
            )
    finally:
        releaser.stop()
        lst.close()


def test_a_client_that_is_not_postgresql_is_named(unix: tuple[Gate, Listener]) -> None:
    gate, lst = unix
    assert lst.dir is not None
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(lst.dir / ".s.PGSQL.5432"))
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert gate.wait_for(lambda: gate.failure is not None, 10)
    assert gate.failure is not None
    assert gate.failure.startswith("a: a connection to the proxy is not a PostgreSQL client")
    assert "\n" not in gate.failure


def test_a_protocol_violation_after_startup_is_named(unix: tuple[Gate, Listener]) -> None:
    gate, lst = unix
    assert lst.dir is not None
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(lst.dir / ".s.PGSQL.5432"))
        params = b"user\0x\0database\0y\0\0"
        s.sendall(struct.pack("!II", 8 + len(params), framing.PROTOCOL_3) + params)
        reader = framing.Reader(s)
        while reader.message().kind != framing.READY:
            pass
        s.sendall(b"\x01garbage")
        assert gate.wait_for(lambda: gate.failure is not None, 10)
    assert gate.failure is not None and "broke the protocol" in gate.failure


def test_cancel_reaches_the_server(unix: tuple[Gate, Listener]) -> None:
    gate, lst = unix
    releaser = AutoRelease(gate)
    try:
        with psycopg.connect(lst.env()["DATABASE_URL"]) as c:
            threading.Timer(0.5, c.cancel_safe).start()
            with pytest.raises(psycopg.errors.QueryCanceled):
                c.execute("SELECT pg_sleep(20)")
    finally:
        releaser.stop()


def _startup(s: socket.socket) -> framing.Reader:
    params = b"user\0x\0database\0y\0\0"
    s.sendall(struct.pack("!II", 8 + len(params), framing.PROTOCOL_3) + params)
    reader = framing.Reader(s)
    while reader.message().kind != framing.READY:
        pass
    return reader


def test_a_round_released_at_flush_goes_on_to_its_sync(unix: tuple[Gate, Listener]) -> None:
    """A client that prepares, flushes and reads the answer before it binds and
    executes (as some drivers do): the prepare passes, the execution waits at the gate."""
    gate, lst = unix
    assert lst.dir is not None
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(lst.dir / ".s.PGSQL.5432"))
        reader = _startup(s)
        # The gate's waiting thread reads the client (as a store's settling does).
        waiting = threading.Thread(
            target=gate.wait_for, args=(lambda: gate.oldest() is not None, 10)
        )
        waiting.start()
        parse = framing.message(framing.PARSE, b"st\0SELECT 40 + $1::int\0\0\0")
        describe = framing.message(framing.DESCRIBE, b"Sst\0")
        s.sendall(parse + describe + framing.message(framing.FLUSH))
        kinds = [reader.message().kind for _ in range(3)]
        assert kinds == [ord("1"), ord("t"), ord("T")]  # ParseComplete, params, row shape
        bind = framing.message(framing.BIND, b"\0st\0\0\0\0\x01\0\0\0\x012\0\0")
        execute = framing.message(framing.EXECUTE, b"\0\0\0\0\0")
        s.sendall(bind + execute + framing.message(framing.SYNC))
        waiting.join(timeout=10)
        assert gate.wait_for(lambda: gate.oldest() is not None, 10)
        link = gate.oldest()
        assert link is not None and link.parked is not None
        assert link.parked.sql == ("SELECT 40 + $1::int",)
        gate.release(link)
        got = []
        while (msg := reader.message()).kind != framing.READY:
            got.append(msg)
        assert [m.kind for m in got] == [ord("2"), ord("D"), ord("C")]
        assert got[1].body.endswith(b"42")
        assert link.result.tags == ["SELECT 1"]
