"""An actor that is a command: an OS process, in any language, whose PostgreSQL
connections come through racesim's proxy.

Opening the run starts the command with ``PGHOST``/``PGPORT``/``DATABASE_URL`` (and
the rest of libpq's variables) pointing at a listener of its own, and waits until it
has parked its first round at the gate or exited. Each ``round()`` releases the
oldest parked round, sending it and relaying the answer in the calling thread until
its ``ReadyForQuery`` went back to the command, then waits (reading what the
command sends) until the command has parked its next round or exited. The command's
exit status and output are the run's result.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

from racesim.engine.sessions import note_sent
from racesim.errors import HarnessError, InputError
from racesim.proxy.gate import Gate
from racesim.proxy.link import Link
from racesim.proxy.listener import Listener
from racesim.proxy.upstream import open_upstream, proxied
from racesim.system import Session

OUTPUT_KEPT = 64 * 1024
"""Bytes of a command's output kept (the last ones)."""

CALL = "round"
"""A round whose SQL starts with no statement keyword (or an empty one)."""
VERBS = frozenset(
    [
        "select",
        "insert",
        "update",
        "delete",
        "merge",
        "with",
        "values",
        "table",
        "begin",
        "start",
        "commit",
        "end",
        "rollback",
        "abort",
        "savepoint",
        "release",
        "prepare",
        "execute",
        "deallocate",
        "set",
        "reset",
        "show",
        "create",
        "alter",
        "drop",
        "truncate",
        "copy",
        "lock",
        "explain",
        "analyze",
        "vacuum",
        "listen",
        "notify",
        "unlisten",
        "declare",
        "fetch",
        "move",
        "do",
        "call",
        "grant",
        "revoke",
        "comment",
        "discard",
        "checkpoint",
        "reindex",
        "cluster",
        "refresh",
    ]
)
"""A round's call is named by its first statement's keyword (``update``), so a saved
schedule reads as what each step does and a replay checks each step against it."""


def verb(sql: str) -> str:
    """The call name of a round whose SQL is ``sql``: its first keyword, lowercased."""
    words = sql.lstrip(" \t\r\n(").split(None, 1)
    word = words[0].lower().rstrip(";(") if words else ""
    return word if word in VERBS else CALL


_CLEARED_ENV = ("PG", "DATABASE_URL")
"""Inherited variables dropped before the proxy's are set (no route around it)."""


@dataclass(frozen=True)
class Command:
    """How to start one actor's command (``{store}`` in it becomes the variant's name,
    ``{actor}`` the actor's)."""

    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None
    where: str = ""
    """Where it was written (``FILE: programs.NAME``), for messages."""


class StatementError(Exception):
    """A round's statement failed on the server (as the command saw it)."""

    def __init__(self, sqlstate: str, message: str) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


class CommandError(InputError, HarnessError):
    """The command cannot be raced: it never connected, hung, or broke the protocol.
    Bad input (exit status 2) that also ends the run where it stands."""


@dataclass
class Exit:
    status: int
    output: str

    def __str__(self) -> str:
        last = self.output.strip().splitlines()[-1][:200] if self.output.strip() else ""
        return f"exit {self.status}" + (f": {last}" if last else "")


class CommandStore:
    """One run of a command: its process, its listener, the gate of its rounds."""

    def __init__(
        self,
        session: Session,
        command: Command,
        store: str,
        env: Mapping[str, str],
        timeout: float,
        tcp: bool = False,
    ) -> None:
        assert session.conn is not None
        self.actor = session.actor
        self.conn = session.conn
        self.timeout = timeout
        # The command's sessions carry the actor's name (racesim.proxy.upstream); noted
        # as the run's session opening, so a .spec written of the run sets it too.
        note_sent(self.conn, f"SET racesim.actor = '{self.actor.replace(chr(39), chr(39) * 2)}'")
        self.gate = Gate(self.actor)
        info = session.conn.info
        params = info.get_parameters()
        if info.password:
            params["password"] = info.password
        params.pop("options", None)
        conninfo = make_conninfo(**params)
        self.listener = Listener(
            self.gate, lambda p: open_upstream(conninfo, p, self.actor), tcp=tcp
        )
        self.current: Link | None = None
        self.rounds = 0
        self.trails: dict[int, list[str]] = {}
        """The SQL each connection (by its state's id) has sent, round by round."""
        self.saved: tuple[str, ...] | None = None
        """The SQL of each round of a saved run (a replay's), to check before each round."""
        self.exit: Exit | None = None
        self._output = bytearray()
        self._output_done = threading.Event()
        child_env = {k: v for k, v in os.environ.items() if not k.startswith(_CLEARED_ENV)}
        child_env.update(self.listener.env())

        def fill(text: str) -> str:
            return text.replace("{store}", store).replace("{actor}", self.actor)

        child_env.update({k: fill(v) for k, v in env.items()})
        child_env.update({k: fill(v) for k, v in command.env.items()})
        argv = [fill(a) for a in command.argv]
        try:
            self.proc = subprocess.Popen(
                argv,
                cwd=command.cwd,
                env=child_env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            self.listener.close()
            raise CommandError(
                f"{command.where}: {self.actor}: cannot start {argv[0]!r} ({exc.strerror});"
                " fix: a command line whose program exists and is executable"
            ) from None
        threading.Thread(target=self._read_output, name="racesim-output", daemon=True).start()
        try:
            self._settle(first=True)
        except BaseException:
            self.stop()
            raise

    # -- what the program and the engine ask --------------------------------

    def next_sql(self) -> str | None:
        """The SQL of the round the command sends next; None once it has exited."""
        with self.gate.cond:
            link = self.gate.oldest()
            return None if link is None or link.parked is None else "\n".join(link.parked.sql)

    def trail(self) -> tuple[str, ...]:
        """The SQL its next round's connection has sent, then that round's."""
        with self.gate.cond:
            link = self.gate.oldest()
            if link is None or link.parked is None:
                return ()
            return (*self.trails.get(id(link), ()), "\n".join(link.parked.sql))

    def round(self) -> str:
        """Release the command's next round; its command tags (a failed statement raises)."""
        with self.gate.cond:
            link = self.gate.oldest()
        if link is None:
            raise CommandError(f"{self.actor}: no round is waiting at the proxy")
        assert link.parked is not None
        sql = "\n".join(link.parked.sql)
        if self.saved is not None and (
            self.rounds >= len(self.saved) or self.saved[self.rounds] != sql
        ):
            self.stop()
            saved = self.saved[self.rounds] if self.rounds < len(self.saved) else "(no more)"
            raise CommandError(
                f"{self.actor}: round {self.rounds + 1} sends {_short(sql)!r}, but the saved"
                f" run sent {_short(saved)!r} (its code changed since, or what it sends depends"
                " on timing); nothing is reported as found"
            )
        for text in link.parked.sql:
            note_sent(self.conn, text)
        self.trails.setdefault(id(link), []).append(sql)
        self.current = link
        # This thread sends the round and relays the answer. No bound of its own:
        # the round may wait on a lock as long as the schedule says; the engine ends
        # the run (closing the connection, so this wait ends) when it gives up.
        self.gate.release(link)
        self.rounds += 1
        self.current = None
        result = link.result
        self._settle()
        if result.error is not None:
            raise StatementError(*result.error)
        return "; ".join(result.tags) if result.tags else "(no rows)"

    def __getattr__(self, name: str) -> Any:
        # Every call of a command's program (named by its SQL's keyword) is its next round.
        if name in VERBS or name == CALL:
            return self.round
        raise AttributeError(name)

    def close(self) -> None:
        """The run's session ends (a crash): the command goes with it."""
        self.stop()

    def backend_pid(self) -> int:
        link = self.current
        return link.pid if link is not None else 0

    def backend_pids(self) -> tuple[int, ...]:
        return self.listener.pids()

    def stop(self) -> None:
        """End the command's process group and every connection it made."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        self.listener.close()
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    # -- waiting for the command ----------------------------------------------

    def _read_output(self) -> None:
        stream = self.proc.stdout
        assert stream is not None
        fd = stream.fileno()
        with contextlib.suppress(OSError):
            while chunk := os.read(fd, 65536):
                self._output += chunk
                if len(self._output) > OUTPUT_KEPT:
                    del self._output[: len(self._output) - OUTPUT_KEPT]
        # Its output closes as it exits: wait until it is reaped, so the exit is seen.
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=self.timeout)
        self._output_done.set()
        self.gate.notify()

    def _parked_or_exited(self) -> bool:
        if self.gate.failure is not None:
            return True
        if self.gate.busy():
            return False
        if self.gate.oldest() is not None:
            return True
        return self._output_done.is_set() and self.proc.poll() is not None

    def _settle(self, first: bool = False) -> None:
        """Wait until the command parks its next round or exits (bounded)."""
        if not self.gate.wait_for(self._parked_or_exited, self.timeout):
            connected = bool(self.gate.links)
            self.stop()
            if first and not connected:
                raise CommandError(
                    f"{self.actor}: the command neither connected to the proxy nor exited"
                    f" within {self.timeout:g}s; fix: make it connect with PGHOST/PGPORT or"
                    " DATABASE_URL as racesim sets them, or raise timeout"
                )
            raise CommandError(
                f"{self.actor}: the command hung: {self.rounds} round(s) in, it neither sent"
                f" another statement nor exited within {self.timeout:g}s; fix: end the"
                " command, or raise timeout"
            )
        if self.gate.failure is not None:
            problem = self.gate.failure
            self.stop()
            raise CommandError(problem)
        self._check_route()
        if self.gate.oldest() is None:
            status = self.proc.wait()
            self.exit = Exit(status, self._output.decode("utf-8", "replace"))

    def _check_route(self) -> None:
        """A session on the run's database that is neither racesim's own nor proxied
        is a connection around the proxy: its statements would escape the schedule."""
        # A plain cursor: this look is racesim's, not part of the step's record.
        row = (
            psycopg.Cursor(self.conn)
            .execute(
                "SELECT pid, application_name FROM pg_stat_activity"
                " WHERE datname = current_database() AND backend_type = 'client backend'"
                " AND pid <> pg_backend_pid() AND application_name NOT LIKE 'racesim%%'"
                " AND NOT (pid = ANY(%s::int[])) LIMIT 1",
                (proxied(),),
            )
            .fetchone()
        )
        if row is not None:
            self.stop()
            raise CommandError(
                f"{self.actor}: a session reached the run's database around the proxy"
                f" (backend {row[0]}, application_name {str(row[1])[:40]!r}); fix: connect only"
                " through PGHOST/PGPORT or DATABASE_URL as racesim sets them"
            )

    @property
    def output(self) -> str:
        return self._output.decode("utf-8", "replace")


def _short(sql: str) -> str:
    text = " ".join(sql.split())
    return text if len(text) <= 80 else text[:79] + "…"
