"""Reading scenario files: regular files only, bounded in size, read without
following links or blocking; and the scenario files a list of paths names."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from racesim.errors import InputError

__all__ = ["MAX_BYTES", "discover", "read"]

MAX_BYTES = 1_000_000


_KINDS = {
    stat.S_IFDIR: "a folder",
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFLNK: "a symbolic link",
}


def read(p: Path) -> bytes:
    """The bytes of a regular file of at most MAX_BYTES, checked before anything is read.

    A symbolic link, FIFO, device or folder is refused from its ``lstat``, so nothing
    is opened that could block or never end; the file is then opened without following
    links and without blocking, and its ``fstat`` is checked again.
    """
    try:
        _check_kind(p, os.lstat(p))
        fd = os.open(p, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            _check_kind(p, os.lstat(p))
        raise InputError(
            f"{p}: cannot read the scenario ({exc.strerror}); check the path and that"
            " you may read it and every folder above it"
        ) from None
    try:
        _check_kind(p, os.fstat(fd))
        with os.fdopen(fd, "rb", closefd=False) as f:
            raw = f.read(MAX_BYTES + 1)
    except OSError as exc:
        raise InputError(f"{p}: cannot read the scenario ({exc.strerror})") from None
    finally:
        os.close(fd)
    if len(raw) > MAX_BYTES:
        raise InputError(f"{p}:1: file is over {MAX_BYTES} bytes; split it into smaller files")
    return raw


def _check_kind(p: Path, st: os.stat_result) -> None:
    if not stat.S_ISREG(st.st_mode):
        kind = _KINDS.get(stat.S_IFMT(st.st_mode), "not a regular file")
        fix = (
            f"name the file itself ({os.path.realpath(p)})"
            if stat.S_ISLNK(st.st_mode)
            else "name a regular TOML file"
        )
        raise InputError(f"{p}: is {kind}, and scenarios are read from regular files only; {fix}")
    if st.st_size > MAX_BYTES:
        raise InputError(
            f"{p}:1: file is {st.st_size} bytes, more than {MAX_BYTES}; split it into smaller files"
        )


def discover(paths: list[str]) -> list[Path]:
    """Scenario files named directly or found (``*.toml``) in named folders, sorted."""
    found: list[Path] = []
    for raw in paths:
        p = Path(raw)
        try:
            is_dir = stat.S_ISDIR(os.stat(p).st_mode)
        except (OSError, ValueError):
            is_dir = False  # load() says what is wrong with it
        if not is_dir:
            found.append(p)
            continue
        try:
            names = sorted(e.name for e in os.scandir(p) if e.name.endswith(".toml"))
        except OSError as exc:
            raise InputError(
                f"{p}: cannot list the folder ({exc.strerror}); check that you may read it"
            ) from None
        found += [p / name for name in names]
    return found
