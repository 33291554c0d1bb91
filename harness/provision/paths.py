"""racesim's own directories and files, never someone else's planted ones.

racesim often runs as root and works in shared places (``/dev/shm``, ``/tmp``).
Every directory it keeps state in is checked with ``lstat`` (a symbolic link is
refused, never followed), must be owned by racesim's user and writable by no one
else, and must be reached through directories no one else can rename (owned by
root or racesim's user, or sticky). Files are created with
``O_CREAT | O_EXCL | O_NOFOLLOW`` and opened with ``O_NOFOLLOW``.

Example::

    ensure_private_dir(Path("/dev/shm/racesim-cache"), 0o755, fix="set RACESIM_CACHE_DIR")
    fd = create_file(Path("/dev/shm/racesim-cache/lock"), 0o600)
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from racesim import config
from racesim.errors import ProvisionError

__all__ = [
    "check_private_dir",
    "check_shared_dir",
    "create_file",
    "ensure_private_dir",
    "open_existing",
    "run_root",
]

_NEW = os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def ensure_private_dir(path: Path, mode: int, *, fix: str) -> Path:
    """Create ``path`` (and missing parents) if needed, then :func:`check_private_dir`."""
    path = Path(os.path.abspath(path))
    _check_reach(path.parent, fix)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        os.mkdir(path, mode)
    except FileExistsError:
        pass
    check_private_dir(path, fix=fix)
    return path


def check_private_dir(path: Path, *, fix: str) -> None:
    """Refuse ``path`` unless it is a real directory of ours that only we may change.

    Raises :class:`ProvisionError` naming what is wrong and ``fix``.
    """
    path = Path(os.path.abspath(path))
    _check_reach(path.parent, fix)
    try:
        st = os.lstat(path)
    except OSError as exc:
        raise ProvisionError(f"{path}: {exc.strerror}; fix: {fix}") from None
    problem = _problem(st, own=True)
    if problem:
        raise ProvisionError(f"refusing {path}: it {problem}; fix: {fix}")


def check_shared_dir(path: Path, *, fix: str) -> None:
    """Refuse ``path`` (a place racesim makes private directories in, like ``/dev/shm``)
    unless it and every directory above it is root's or ours, and sticky if others
    may write it."""
    path = Path(os.path.abspath(path))
    _check_reach(path, fix)
    if not os.path.isdir(path):
        raise ProvisionError(f"{path} is not a directory; fix: {fix}")


def _problem(st: os.stat_result, *, own: bool) -> str | None:
    if stat.S_ISLNK(st.st_mode):
        return "is a symbolic link"
    if not stat.S_ISDIR(st.st_mode):
        return "is not a directory"
    me = os.geteuid()
    if own and st.st_uid != me:
        return f"is owned by uid {st.st_uid}, not {me}"
    if not own and st.st_uid not in (0, me):
        return f"is owned by uid {st.st_uid}"
    others = st.st_mode & 0o002 or (st.st_mode & 0o020 and st.st_gid != os.getegid())
    if others and (own or not st.st_mode & stat.S_ISVTX):
        return "is writable by other users"
    return None


def _check_reach(folder: Path, fix: str) -> None:
    """Every directory on the way to ``folder`` (as written and as resolved) must be
    one that no other user can rename entries in; missing ones are fine."""
    for chain in (folder, Path(os.path.realpath(folder))):
        for step in [*reversed(chain.parents), chain]:
            try:
                st = os.lstat(step)
            except FileNotFoundError:
                return
            except OSError as exc:
                raise ProvisionError(f"{step}: {exc.strerror}; fix: {fix}") from None
            if stat.S_ISLNK(st.st_mode):
                if st.st_uid not in (0, os.geteuid()):
                    raise ProvisionError(
                        f"refusing {step}: a symbolic link owned by uid {st.st_uid}; fix: {fix}"
                    )
                continue  # the resolved chain checks where it leads
            problem = _problem(st, own=False)
            if problem:
                raise ProvisionError(f"refusing a path through {step}: it {problem}; fix: {fix}")


def create_file(path: Path, mode: int) -> int:
    """A new file at ``path`` (never an existing one, never through a link): its fd."""
    return os.open(path, os.O_WRONLY | _NEW, mode)


def open_existing(path: Path, flags: int) -> int:
    """Open ``path`` without following a link; refuse anything but a regular file of ours."""
    fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC)
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
        os.close(fd)
        raise ProvisionError(f"refusing {path}: not a regular file owned by uid {os.geteuid()}")
    return fd


# A cluster takes ~30 MB; containers often get a 64 MB /dev/shm, too small to share.
_MIN_SHM_FREE = 512 * 1024 * 1024


def run_root() -> Path:
    """Where run directories go: ``$RACESIM_RUN_DIR``, else ``/dev/shm`` when writable and
    roomy, else the temp dir."""
    explicit = config.value("run_dir")
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
