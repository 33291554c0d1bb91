"""A throwaway local PostgreSQL cluster, reachable only through a private unix socket.

Example::

    with Cluster(find_binaries()) as cluster:
        with psycopg.connect(cluster.conninfo()) as conn:
            conn.execute("SELECT 1")

Where things live:

* **Run directory** ``/dev/shm/racesim-run-<pid>-<random>`` (tmpfs; the system
  temp dir when ``/dev/shm`` is not writable or has under 512 MB free;
  ``$RACESIM_RUN_DIR`` overrides, and must be traversable by the server user)
  holds ``data/`` (the cluster), ``sock/`` (the socket directory, mode 0700,
  owned by the server's user), ``postmaster.log``, ``pg_hba.conf`` and an
  ``owner`` file. The run directory itself stays racesim's (mode 0711 when the
  server runs as another user), so the server's user cannot replace the log or
  the authentication file with a link; both are created with ``O_EXCL |
  O_NOFOLLOW``. It is removed when the cluster stops; see
  :mod:`racesim.provision.cleanup` for what happens when racesim is killed.
* **Cache**: see :mod:`racesim.provision.cache`; a start copies a cached
  initdb'ed data directory (a read-only template, checked against the manifest
  recorded when it was made) instead of running initdb, and the server only ever
  runs on that copy.

Authentication: every role needs its SCRAM password (``pg_hba.conf`` in the run
directory, ``-c hba_file``); a started cluster's superuser gets a fresh random
password that only this racesim process knows (set as a SCRAM verifier, never
printed: :mod:`racesim.provision.masking` hides it). The server listens on no TCP
address (``listen_addresses=''``), keeps its dynamic shared memory in files inside
its data directory (``dynamic_shared_memory_type=mmap``, so a killed server leaves
no ``/dev/shm/PostgreSQL.*`` behind) and runs with durability off (fsync,
synchronous_commit, full_page_writes); it is disposable.
"""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
import weakref
from collections.abc import Mapping
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType
from typing import Any

import psycopg
from psycopg import sql

from racesim.errors import ProvisionError
from racesim.provision import cache, cleanup, connecting, paths
from racesim.provision.account import SUPERUSER, ServerUser, server_env, server_user
from racesim.provision.binaries import Binaries, find_binaries
from racesim.provision.bincopy import usable_binaries
from racesim.provision.cache import cache_root
from racesim.provision.initdb import scram_verifier
from racesim.provision.masking import remember
from racesim.provision.paths import run_root

__all__ = [
    "FAST_SETTINGS",
    "PORT",
    "RUN_PREFIX",
    "SUPERUSER",
    "Cluster",
    "ServerUser",
    "cache_root",
    "run_root",
    "server_env",
    "server_user",
]

RUN_PREFIX = "racesim-run"
PORT = 5432
_LOG = "postmaster.log"
_HBA = "pg_hba.conf"

FAST_SETTINGS: Mapping[str, str] = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "shared_buffers": "64MB",
    # Autovacuum workers take locks at unpredictable moments; races must come from
    # the scenario alone.
    "autovacuum": "off",
    "jit": "off",
    "checkpoint_timeout": "1h",
    "max_wal_size": "1GB",
    "huge_pages": "off",
    # Segments in <data>/pg_dynshmem instead of /dev/shm/PostgreSQL.*, which a
    # killed postmaster would leave behind.
    "dynamic_shared_memory_type": "mmap",
}


class Cluster:
    """A throwaway PostgreSQL cluster; a context manager (``start``/``stop`` also work).

    After :meth:`start`: ``params`` holds libpq keywords for the ``postgres``
    database, ``initdb_ran`` says whether this start had to run initdb (cache
    miss), ``binaries`` the binaries actually run (a cached copy if needed).
    ``janitor=False`` disables the kill-safety nets (janitor, parent-death
    signal); it exists so tests can exercise stale-directory recovery.
    """

    def __init__(
        self,
        binaries: Binaries | None = None,
        *,
        cache_dir: Path | None = None,
        run_dir_root: Path | None = None,
        settings: Mapping[str, str] | None = None,
        janitor: bool = True,
        timeout: float = 30.0,
    ) -> None:
        self.binaries = binaries or find_binaries()
        self.cache_dir = cache_dir or cache_root()
        self.run_dir_root = run_dir_root or run_root()
        self.settings = {**FAST_SETTINGS, **(settings or {})}
        self.use_janitor = janitor
        self.timeout = timeout
        self.user = server_user()
        self.initdb_ran = False
        self.run_dir: Path | None = None
        self._owner = os.getpid()  # a forked child must not stop its parent's cluster
        self._proc: subprocess.Popen[bytes] | None = None
        self._janitor: cleanup.Janitor | None = None
        self._password: str | None = None
        self._holds = ExitStack()  # the shared lock on the cache while we run

    @property
    def version(self) -> int:
        """Server major version, e.g. 15."""
        return self.binaries.version

    @property
    def data_dir(self) -> Path:
        """The running cluster's data directory."""
        return self._run_dir / "data"

    @property
    def socket_dir(self) -> Path:
        """The private socket directory (mode 0700): the ``host`` to connect to."""
        return self._run_dir / "sock"

    @property
    def pid(self) -> int | None:
        """The postmaster's pid while running."""
        return self._proc.pid if self._proc is not None else None

    @property
    def params(self) -> dict[str, str]:
        """libpq keywords for the maintenance database."""
        params = {
            "host": str(self.socket_dir),
            "port": str(PORT),
            "user": SUPERUSER,
            "dbname": "postgres",
        }
        if self._password is not None:
            params["password"] = self._password
        return params

    def conninfo(self, dbname: str | None = None) -> str:
        """A conninfo string, for ``dbname`` or the maintenance database."""
        params = self.params
        if dbname is not None:
            params["dbname"] = dbname
        return psycopg.conninfo.make_conninfo(**params)

    @property
    def _run_dir(self) -> Path:
        if self.run_dir is None:
            raise ProvisionError("cluster is not started")
        return self.run_dir

    def __enter__(self) -> Cluster:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Copy (or create) a data directory, start postgres and wait until it answers."""
        if self.run_dir is not None:
            raise ProvisionError("cluster is already started")
        paths.check_shared_dir(
            self.run_dir_root,
            fix="set RACESIM_RUN_DIR to a directory that only you or root can change",
        )
        cleanup.reap_stale(self.run_dir_root, RUN_PREFIX)
        try:
            with cleanup.shielded():
                self.run_dir = Path(
                    tempfile.mkdtemp(prefix=f"{RUN_PREFIX}-{os.getpid()}-", dir=self.run_dir_root)
                )
                cleanup.write_owner(self.run_dir)
                _running.add(self)
                if self.use_janitor:
                    self._janitor = cleanup.start_janitor(self.run_dir)
            self._prepare()
            self._launch(new_log=True)
            self._wait_ready(own_password=True)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop postgres (immediate shutdown) and remove the run directory. Idempotent."""
        if os.getpid() != self._owner:
            return
        with cleanup.shielded():
            self._stop_postmaster(signal.SIGQUIT, timeout=10)
            if self.run_dir is not None:
                shutil.rmtree(self.run_dir, ignore_errors=True)
                self.run_dir = None
            if self._janitor is not None:
                self._janitor.release()
                self._janitor = None
            self._holds.close()
            self._password = None
            _running.discard(self)

    def restart(self) -> None:
        """Stop the server with a fast shutdown and start it again on the same data.

        Every session is cut, committed data stays: what a server restart does to
        the callers. The socket path, and so every conninfo, stays the same.
        """
        if self._proc is None or self.run_dir is None:
            raise ProvisionError("cluster is not running")
        with cleanup.shielded():
            self._stop_postmaster(signal.SIGINT, timeout=30)  # fast shutdown: keeps data
        self._launch(new_log=False)
        self._wait_ready()

    def _stop_postmaster(self, signum: signal.Signals, timeout: float) -> None:
        """Signal the postmaster (if it still runs) and wait for it; kill it if it lingers."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.send_signal(signum)
            try:
                self._proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    # -- steps of start() ---------------------------------------------------------

    def _prepare(self) -> None:
        run = self._run_dir
        if self.user.switch:
            run.chmod(0o711)  # the server user may pass through, never rename inside
        self.cache_dir = cache.ensure_root(self.cache_dir, self.user)
        held = self._holds.enter_context(cache.hold(self.cache_dir))
        self.binaries = usable_binaries(self.binaries, self.user, self.cache_dir, held=held)
        entry, self.initdb_ran = cache.data_entry(
            self.binaries, self.user, self.cache_dir, held=held
        )
        self._password = entry.password
        remember({"password": entry.password})
        with os.fdopen(paths.create_file(run / _HBA, 0o644), "w") as hba:
            hba.write("local all all scram-sha-256\n")
        self.socket_dir.mkdir(mode=0o700)
        self.user.chown(self.socket_dir)
        # The server runs on a copy of its own: nothing it does reaches the cache.
        entry.copy_to(self.data_dir, self.user)

    def _launch(self, *, new_log: bool) -> None:
        settings = {
            "hba_file": str(self._run_dir / _HBA),
            **self.settings,
            "listen_addresses": "",
            "unix_socket_directories": str(self.socket_dir),
            "port": str(PORT),
        }
        argv = [str(self.binaries.tool("postgres")), "-D", str(self.data_dir)]
        for key, value in settings.items():
            argv += ["-c", f"{key}={value}"]
        # The log is ours, in our own directory: created new at start, appended to at
        # restart, and never through a link.
        log_path = self._run_dir / _LOG
        log = (
            paths.create_file(log_path, 0o600)
            if new_log
            else paths.open_existing(log_path, os.O_WRONLY | os.O_APPEND)
        )
        # Shielded: a signal between the fork and the assignment would orphan the server.
        with os.fdopen(log, "wb") as out, cleanup.shielded():
            self._proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,
                env=server_env(),
                start_new_session=True,  # Ctrl-C goes to racesim, which stops us in order
                preexec_fn=cleanup.parent_death_preexec() if self.use_janitor else None,
                user=self.user.run_uid,
                group=self.user.run_gid,
                extra_groups=self.user.run_groups,
            )
            if self._janitor is not None:
                self._janitor.watch(self._proc.pid)

    def _own_password(self, conn: psycopg.Connection[Any]) -> None:
        """Give the superuser a password of this cluster's own, sent as a SCRAM verifier."""
        password = secrets.token_urlsafe(24)
        remember({"password": password})
        conn.execute(
            sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                sql.Identifier(SUPERUSER), sql.Literal(scram_verifier(password))
            )
        )
        self._password = password

    def _wait_ready(self, *, own_password: bool = False) -> None:
        """Wait until the server answers; on a first start, give it its own password."""
        assert self._proc is not None
        socket = self.socket_dir / f".s.PGSQL.{PORT}"
        deadline = time.monotonic() + self.timeout
        conninfo = self.conninfo()
        while True:
            if self._proc.poll() is not None:
                raise ProvisionError(
                    f"postgres ({self.binaries.bindir}) exited with code {self._proc.returncode}"
                    f" while starting; its log:\n{self._log_tail()}"
                )
            if socket.exists():
                try:
                    with connecting.connect(conninfo, autocommit=True) as conn:
                        if own_password:
                            self._own_password(conn)
                        else:
                            conn.execute("SELECT 1")
                    return
                except psycopg.OperationalError:
                    pass  # still starting up
            if time.monotonic() > deadline:
                raise ProvisionError(
                    f"postgres did not accept connections within {self.timeout:.0f}s; "
                    f"its log:\n{self._log_tail()}"
                )
            time.sleep(0.002)

    def _log_tail(self) -> str:
        try:
            fd = paths.open_existing(self._run_dir / _LOG, os.O_RDONLY)
            with os.fdopen(fd, "rb") as log:
                lines = log.read().decode(errors="replace").splitlines()
        except (OSError, ProvisionError) as exc:
            return f"(log unreadable: {exc})"
        return "\n".join(lines[-20:])


_running: weakref.WeakSet[Cluster] = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    # Clusters not used as context managers still go away on a normal interpreter exit.
    for cluster in list(_running):
        cluster.stop()
