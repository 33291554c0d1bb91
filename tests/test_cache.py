"""racesim's cache: never a planted path, keyed by content, bounded, cleanable."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from racesim.errors import ProvisionError
from racesim.provision import cache
from racesim.provision.account import ServerUser, server_user, user_may
from racesim.provision.binaries import Binaries, find_binaries
from racesim.provision.cluster import Cluster

ROOT = Path(__file__).resolve().parent.parent
IS_ROOT = os.geteuid() == 0


def _nobody() -> pwd.struct_passwd:
    if not IS_ROOT:
        pytest.skip("planting as another user needs root")
    try:
        return pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no 'nobody' user")


def _skip_unless_readable_by(user: pwd.struct_passwd, *paths: str | Path) -> None:
    """Skip when ``user`` cannot read the checkout (a clone in a private folder)."""
    who = ServerUser(user.pw_name, user.pw_uid, user.pw_gid, (), switch=True)
    for path in paths:
        if not user_may(who, Path(path), os.R_OK):
            pytest.skip(
                f"{user.pw_name!r} cannot read {path} (a private folder holds this checkout), "
                f"so racesim cannot run as {user.pw_name!r} from it"
            )


def _as(user: pwd.struct_passwd, *argv: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        argv,
        user=user.pw_uid,
        group=user.pw_gid,
        extra_groups=[],
        capture_output=True,
        text=True,
        timeout=120,
        **kwargs,
    )


@pytest.fixture
def shm_like() -> Iterator[Path]:
    """A sticky world-writable folder, like /dev/shm, that nobody else uses."""
    path = Path(tempfile.mkdtemp(prefix="racesim-test-shm-", dir="/dev/shm"))
    path.chmod(0o1777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_a_cache_planted_as_a_link_is_refused_and_its_target_untouched(
    shm_like: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nobody = _nobody()
    victim = shm_like / "victim-etc"
    victim.mkdir(mode=0o755)
    planted = shm_like / "racesim-cache"
    assert _as(nobody, "ln", "-s", str(victim), str(planted)).returncode == 0
    monkeypatch.setenv("RACESIM_CACHE_DIR", str(planted))
    with pytest.raises(ProvisionError, match="symbolic link"):
        Cluster(find_binaries()).start()
    assert list(victim.iterdir()) == []


def test_a_cache_owned_by_someone_else_is_refused(shm_like: Path) -> None:
    nobody = _nobody()
    planted = shm_like / "racesim-cache"
    assert _as(nobody, "mkdir", "-m", "0755", str(planted)).returncode == 0
    with pytest.raises(ProvisionError, match="owned by uid"):
        Cluster(find_binaries(), cache_dir=planted).start()
    assert list(planted.iterdir()) == []


def test_a_cache_reached_through_another_users_folder_is_refused(shm_like: Path) -> None:
    nobody = _nobody()
    theirs = shm_like / "theirs"
    assert _as(nobody, "mkdir", "-m", "0755", str(theirs)).returncode == 0
    with pytest.raises(ProvisionError, match="owned by uid"):
        cache.ensure_root(theirs / "cache", server_user())


def _copy_tools(binaries: Binaries, where: Path) -> Binaries:
    where.mkdir()
    for name in ("postgres", "initdb"):
        shutil.copy2(binaries.tool(name), where / name)
    return Binaries(where, binaries.version, binaries.source, "test", binaries.full_version)


def test_the_key_is_the_binaries_content_not_their_place(tmp_path: Path) -> None:
    original = find_binaries()
    user = server_user()
    first = _copy_tools(original, tmp_path / "venv1")
    second = _copy_tools(original, tmp_path / "venv2")
    assert cache.binaries_key(first, user) == cache.binaries_key(second, user)
    assert cache.binaries_key(original, user) == cache.binaries_key(first, user)
    with open(second.tool("initdb"), "ab") as f:
        f.write(b"\0")
    assert cache.binaries_key(second, user) != cache.binaries_key(first, user)


def _fake_entries(root: Path, kind: str, count: int) -> list[Path]:
    made = []
    for n in range(count):
        entry = root / f"{kind}fake{n}"
        entry.mkdir()
        (entry / "blob").write_bytes(b"x" * 1000)
        stamp = time.time() - 1000 + n  # fake0 is the least recently used
        os.utime(entry, (stamp, stamp))
        made.append(entry)
    return made


def test_the_cache_keeps_only_the_most_recently_used_entries(shm_like: Path) -> None:
    root = cache.ensure_root(shm_like / "cache", server_user())
    data = _fake_entries(root, "pgdata-", cache.KEEP + 2)
    bins = _fake_entries(root, "bin-", cache.KEEP + 1)
    with cache.hold(root):
        assert cache.evict(root) == []  # in use by a running cluster: nothing goes
    removed = cache.evict(root)
    assert sorted(removed) == sorted([*data[:2], *bins[:1]])
    assert all(p.exists() for p in [*data[2:], *bins[1:]])


def test_a_real_start_evicts_beyond_the_bound(shm_like: Path) -> None:
    root = shm_like / "cache"
    stale = _fake_entries(cache.ensure_root(root, server_user()), "pgdata-", cache.KEEP)
    with Cluster(find_binaries(), cache_dir=root) as cluster:
        assert cluster.initdb_ran
    entries = sorted(p.name for p in root.glob("pgdata-*"))
    assert len(entries) == cache.KEEP
    assert stale[0].name not in entries


def racesim(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "racesim.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
        stdin=subprocess.DEVNULL,
    )


def test_racesim_clean_removes_the_cache_and_refuses_what_is_not_racesims(
    shm_like: Path,
) -> None:
    root = shm_like / "cache"
    with Cluster(find_binaries(), cache_dir=root):
        pass
    assert list(root.glob("pgdata-*"))
    stranger = shm_like / "not-a-cache"
    stranger.mkdir()
    (stranger / "precious").write_text("keep me\n")
    link = shm_like / "link"
    link.symlink_to(root)
    for path, reason in ((stranger, "not racesim's cache"), (link, "symbolic link")):
        refused = racesim("clean", env={"RACESIM_CACHE_DIR": str(path)})
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert reason in refused.stderr and "Traceback" not in refused.stderr
    assert (stranger / "precious").read_text() == "keep me\n"
    assert list(root.glob("pgdata-*"))
    done = racesim("clean", env={"RACESIM_CACHE_DIR": str(root), "RACESIM_RUN_DIR": str(shm_like)})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "racesim clean: 1 cache entries" in done.stdout
    assert not root.exists()


def test_a_user_with_an_unwritable_home_gets_a_private_temporary_cache() -> None:
    nobody = _nobody()
    home = Path(tempfile.mkdtemp(prefix="racesim-test-home-"))
    home.chmod(0o755)  # root's: the user may read it, not write it
    fallback = Path(tempfile.gettempdir()) / f"racesim-cache-{nobody.pw_uid}"
    shutil.rmtree(fallback, ignore_errors=True)
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    python = f"/usr/bin/python{version}"
    if not os.access(python, os.X_OK):
        pytest.skip(f"no {python} the other user can run")
    import site

    _skip_unless_readable_by(nobody, ROOT / "harness" / "cli" / "main.py", *site.getsitepackages())
    code = (
        "import os, site, sys\n"
        "for folder in os.environ['RACESIM_SITE'].split(os.pathsep):\n"
        "    site.addsitedir(folder)\n"
        "from racesim.cli.main import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "RACESIM_SITE": os.pathsep.join(site.getsitepackages()),
    }
    scenario = str(ROOT / "scenarios" / "two-users-refresh.toml")
    try:
        done = _as(
            nobody, python, "-c", code, "run", scenario, "--store", "token", env=env, cwd="/"
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "Traceback" not in done.stderr
        st = os.lstat(fallback)
        assert st.st_uid == nobody.pw_uid and st.st_mode & 0o777 == 0o700
        assert list(fallback.glob("pgdata-*"))
        assert list(home.iterdir()) == []
    finally:
        shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(fallback, ignore_errors=True)
