"""racesim's cache: initdb'ed data directories and copies of binaries, bounded.

Where it lives: ``$RACESIM_CACHE_DIR``; else, as root, ``/dev/shm/racesim-cache``
(``/var/tmp/racesim-cache`` when runs do not go to ``/dev/shm``), because the
server user cannot read root's home; else ``$XDG_CACHE_HOME/racesim`` or
``~/.cache/racesim``, and when that cannot be created (an unwritable home) a
private ``racesim-cache-<uid>`` in the temp dir. The cache directory must be a
real directory owned by racesim's user and writable by no one else
(:mod:`racesim.provision.paths`); it is tagged with a ``CACHEDIR.TAG``.

Entries are keyed by the server's version, the server user's uid and a hash of
the ``postgres`` and ``initdb`` files, never by where the binaries live, so the
same wheel in ten virtual environments shares one entry:

* ``pgdata-<key>/``: ``data/`` (a fresh initdb, :mod:`racesim.provision.initdb`, sealed as a read-only template:
  root's, or as a normal user read-only to the owner; see
  :mod:`racesim.provision.template`), ``manifest`` (what the template looked like
  when made) and ``password`` (the superuser's password in that data directory),
  both mode 0600. No server ever runs on ``data/``: each start verifies it against
  its manifest and copies it; an entry found changed, incomplete or of an older
  layout is removed and made again, never used;
* ``bin-<key>/``: the embedded binaries, copied when the server user cannot run
  them where they are (a wheel under ``/root``; :mod:`racesim.provision.bincopy`).

At most :data:`KEEP` entries of each kind stay; the least recently used go first,
and only while no other racesim uses the cache (a shared ``flock`` on ``lock``
held by every running cluster). :func:`clean` removes the whole cache.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import os
import secrets
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from racesim import config
from racesim.errors import ProvisionError
from racesim.provision import cleanup, initdb, paths, template
from racesim.provision.account import ServerUser, user_may
from racesim.provision.binaries import Binaries

__all__ = [
    "KEEP",
    "TAG",
    "Entry",
    "binaries_key",
    "cache_root",
    "clean",
    "data_entry",
    "evict",
    "hold",
    "tree_bytes",
]

KEEP = 3
"""Entries of each kind (data directories, binary copies) kept in the cache."""
TAG = "CACHEDIR.TAG"
# Bump when the layout or the initdb flags change, so old entries are not reused.
_FORMAT = "3"
_TAG_TEXT = "Signature: 8a477f597d28d172789f06886806bc55\n# racesim's cache (racesim clean)\n"
_KINDS = ("pgdata-", "bin-", "tmp-")
_MANIFEST = "manifest"


def cache_root() -> Path:
    """racesim's cache directory; see the module docstring for the rules."""
    explicit = config.value("cache_dir")
    if explicit:
        return Path(explicit)
    if os.geteuid() == 0:
        if paths.run_root() == Path("/dev/shm"):
            return Path("/dev/shm/racesim-cache")
        return Path("/var/tmp/racesim-cache")
    xdg = os.environ.get("XDG_CACHE_HOME")
    try:
        home = Path(xdg) if xdg else Path.home() / ".cache"
    except RuntimeError:  # no home directory at all
        home = None
    if home is not None and _creatable(home / "racesim"):
        return home / "racesim"
    return Path(tempfile.gettempdir()) / f"racesim-cache-{os.geteuid()}"


def _creatable(path: Path) -> bool:
    """Whether ``path`` exists as a directory or could be made by us."""
    for step in [path, *path.parents]:
        if step.exists():
            return step.is_dir() and os.access(step, os.W_OK | os.X_OK)
    return False


def fix_hint() -> str:
    """What to do about a cache path racesim refuses."""
    return "remove it, or set RACESIM_CACHE_DIR to a directory of your own that only you can write"


def ensure_root(cache: Path, user: ServerUser) -> Path:
    """Create (or check) the cache directory; tag it; reap dead racesims' temp dirs."""
    cache = paths.ensure_private_dir(cache, 0o711 if user.switch else 0o700, fix=fix_hint())
    with contextlib.suppress(FileExistsError):
        fd = paths.create_file(cache / TAG, 0o644)
        with os.fdopen(fd, "w") as f:
            f.write(_TAG_TEXT)
    _reap_temporaries(cache)
    if user.switch and not user_may(user, cache, os.X_OK):
        raise ProvisionError(
            f"the server user {user.name!r} cannot reach racesim cache {cache}; fix: set "
            "RACESIM_CACHE_DIR to a directory it can traverse, e.g. /var/tmp/racesim-cache"
        )
    return cache


def _reap_temporaries(cache: Path) -> None:
    """Remove the temporary folders of racesims that died while filling the cache."""
    if os.geteuid() != 0:
        # A half-made entry may hold a sealed (read-only) template already.
        for path in cache.glob("tmp-*"):
            if not cleanup.owner_alive(path):
                template.remove_tree(path)
    cleanup.reap_stale(cache, "tmp")


@contextlib.contextmanager
def hold(cache: Path) -> Iterator[int]:
    """A shared lock on the cache for as long as a cluster uses it: no eviction meanwhile."""
    fd = _lock_fd(cache)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        yield fd
    finally:
        os.close(fd)


def _lock_fd(cache: Path) -> int:
    try:
        return paths.create_file(cache / "lock", 0o600)
    except FileExistsError:
        return paths.open_existing(cache / "lock", os.O_RDWR)


@functools.lru_cache(maxsize=16)
def _digest(files: tuple[tuple[str, int, int, int, int], ...]) -> str:
    h = hashlib.sha256()
    for path, *_identity in files:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
    return h.hexdigest()


def binaries_key(binaries: Binaries, user: ServerUser) -> str:
    """``<major>-<uid>-<hash>``: the version, the server user and the binaries' content."""
    files = []
    for name in ("postgres", "initdb"):
        path = os.path.realpath(binaries.tool(name))
        st = os.stat(path)
        files.append((path, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns))
    content = _digest(tuple(files))
    digest = hashlib.sha256(f"{_FORMAT}|{binaries.full_version}|{content}".encode()).hexdigest()
    return f"{binaries.version}-{user.uid}-{digest[:16]}"


@dataclass(frozen=True)
class Entry:
    """A cached data directory: ``data``, the template to copy (:meth:`copy_to`), and
    its superuser ``password``."""

    path: Path
    password: str

    @property
    def data(self) -> Path:
        return self.path / "data"

    def copy_to(self, target: Path, user: ServerUser) -> None:
        """A private, writable copy of the template at ``target``, owned by ``user``."""
        template.copy_out(self.data, target, user)


def data_entry(
    binaries: Binaries, user: ServerUser, cache: Path, *, held: int | None = None
) -> tuple[Entry, bool]:
    """The cached initdb'ed data directory, created on a miss; (entry, initdb_ran).

    ``held``: the caller's :func:`hold` on the cache, used to evict old entries.
    """
    final = cache / f"pgdata-{binaries_key(binaries, user)}"
    found = _valid_entry(final)
    if found is not None:
        with contextlib.suppress(OSError):
            os.utime(final, follow_symlinks=False)  # recently used: evicted last
        return found, False
    tmp = Path(tempfile.mkdtemp(prefix=f"tmp-{os.getpid()}-", dir=cache))
    try:
        cleanup.write_owner(tmp)
        if user.switch:
            tmp.chmod(0o711)  # the server user may pass, not rename what is inside
        (tmp / "data").mkdir(mode=0o700)
        user.chown(tmp / "data")
        password = secrets.token_urlsafe(24)
        with os.fdopen(paths.create_file(tmp / "password", 0o600), "w") as f:
            f.write(password)
        initdb.make(binaries, user, tmp / "data", password)
        template.seal(tmp / "data", user)
        with os.fdopen(paths.create_file(tmp / _MANIFEST, 0o600), "w") as f:
            f.write(template.manifest(tmp / "data"))
        (tmp / cleanup.OWNER_FILE).unlink()
        try:
            os.rename(tmp, final)
        except OSError:
            won = _valid_entry(final)
            if won is not None:
                return won, True  # another racesim finished first; its entry is as good
            os.rename(tmp, final)  # what was there was not as made, and is gone now
    finally:
        template.remove_tree(tmp)
    evict(cache, held=held, keep_also=final)
    return Entry(final, password), True


def _valid_entry(final: Path) -> Entry | None:
    """The entry at ``final`` if it is whole, ours and as made; any other is removed."""
    try:
        st = os.lstat(final)
    except FileNotFoundError:
        return None
    try:
        paths.check_private_dir(final, fix=fix_hint())
        data = os.lstat(final / "data")
        if not stat.S_ISDIR(data.st_mode) or data.st_uid != os.geteuid():
            raise ProvisionError(f"{final / 'data'} is not a template of racesim's")
        password = _read(final / "password").strip()
        if not password or template.manifest(final / "data") != _read(final / _MANIFEST):
            raise ProvisionError(f"{final} is not as it was made")
    except (ProvisionError, OSError):
        if stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid():
            _discard(final)
            return None
        raise ProvisionError(f"refusing cache entry {final}; fix: {fix_hint()}") from None
    return Entry(final, password)


def _read(path: Path) -> str:
    with os.fdopen(paths.open_existing(path, os.O_RDONLY)) as f:
        return f.read()


def _discard(entry: Path) -> None:
    """Take ``entry`` out of use at once (a rename), then remove it."""
    aside = entry.with_name(f"tmp-{os.getpid()}-{secrets.token_hex(6)}")
    try:
        os.rename(entry, aside)
    except OSError:
        return  # another racesim took it away first
    template.remove_tree(aside)


def _entries(cache: Path, kind: str) -> list[tuple[int, Path]]:
    """(mtime, path) of the real directories of ``kind`` in ``cache``, newest first."""
    found = []
    with contextlib.suppress(OSError):
        for child in cache.iterdir():
            if not child.name.startswith(kind):
                continue
            # Only racesim writes in its (checked) cache, so any real directory
            # named like an entry is one; a link is never followed.
            st = os.lstat(child)
            if stat.S_ISDIR(st.st_mode):
                found.append((st.st_mtime_ns, child))
    return sorted(found, reverse=True)


def evict(cache: Path, *, held: int | None = None, keep_also: Path | None = None) -> list[Path]:
    """Remove all but the :data:`KEEP` most recently used entries of each kind.

    Only when no other racesim holds the cache (:func:`hold`); else nothing.
    ``held`` is our own :func:`hold`, which is turned exclusive for the while.
    """
    fd = held if held is not None else _lock_fd(cache)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return []
        removed = []
        for kind in ("pgdata-", "bin-"):
            for _mtime, path in _entries(cache, kind)[KEEP:]:
                if path != keep_also:
                    template.remove_tree(path)
                    removed.append(path)
        return removed
    finally:
        if held is not None:
            fcntl.flock(fd, fcntl.LOCK_SH)  # back to sharing (a failed upgrade may drop it)
        else:
            os.close(fd)


def clean(cache: Path) -> tuple[list[tuple[Path, int]], str | None]:
    """Remove racesim's cache at ``cache``: ((path, bytes) removed, why something was not).

    Refuses (:class:`ProvisionError`) a path that is not racesim's: a link, not a
    directory of ours, or without racesim's ``CACHEDIR.TAG``. Leaves a cache alone
    while a racesim uses it.
    """
    if not os.path.lexists(cache):
        return [], None
    fix = "point RACESIM_CACHE_DIR at racesim's cache, or unset it"
    paths.check_private_dir(cache, fix=fix)
    try:
        with os.fdopen(paths.open_existing(cache / TAG, os.O_RDONLY)) as f:
            tagged = f.read() == _TAG_TEXT
    except (OSError, ProvisionError):
        tagged = False
    if not tagged:
        raise ProvisionError(
            f"refusing to clean {cache}: it is not racesim's cache (no {TAG} of racesim's); "
            f"fix: {fix}"
        )
    fd = _lock_fd(cache)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return [], f"{cache} is in use by a running racesim; left alone"
        removed = []
        for kind in _KINDS:
            for _mtime, path in _entries(cache, kind):
                if kind == "tmp-" and cleanup.owner_alive(path):
                    continue
                size = tree_bytes(path)
                template.remove_tree(path)
                removed.append((path, size))
        for name in ("lock", TAG):
            with contextlib.suppress(OSError):
                os.unlink(cache / name)
        with contextlib.suppress(OSError):
            os.rmdir(cache)
        return removed, None
    finally:
        os.close(fd)


def tree_bytes(path: Path) -> int:
    """Bytes held by the files under ``path`` (links not followed)."""
    total = 0
    for folder, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(folder, name)).st_size
    return total
