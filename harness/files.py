"""Files racesim writes: names made safe, and saving that follows no one else's link.

A name read from a user's file (an invariant's, a store's, a file's) may become
part of a file name or be written into a generated ``.spec``. In a file name it is
reduced to a safe alphabet, so it can never name a folder or climb out of one; in a
``.spec`` it goes into a comment with its control characters escaped, so it can
never start a line of grammar. Outputs are written atomically into folders walked
one name at a time (:func:`save`, :func:`open_folder`).

Example::

    >>> file_part("a/../../../x")
    'a_.._.._.._x'
    >>> escaped("x\\nsetup { SELECT 1; }")
    'x\\\\x0asetup { SELECT 1; }'
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import secrets
import stat
from pathlib import Path

from racesim.errors import InputError

__all__ = [
    "MAX_PART",
    "check_target",
    "control_character",
    "escaped",
    "file_part",
    "open_folder",
    "save",
]

MAX_PART = 80
"""Characters of one name in a file name; a longer name is cut and keeps a short hash."""

_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def file_part(name: str) -> str:
    """``name`` as part of a file name: ASCII letters, digits, ``.``, ``_``, ``+`` and
    ``-`` kept, anything else (``/`` included) written as ``_``, no leading ``.``, at most
    :data:`MAX_PART` characters."""
    safe = _UNSAFE.sub("_", name) or "_"
    if safe.startswith("."):
        safe = "_" + safe[1:]
    if len(safe) > MAX_PART:
        digest = hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:12]
        safe = f"{safe[: MAX_PART - 13]}-{digest}"
    return safe


def control_character(text: str) -> str | None:
    """The first control (or line-separating, or bidirectional-override) character
    of ``text``, escaped (``\\x0a``); None when it has none."""
    m = _CONTROL.search(text)
    return None if m is None else _escape(m.group())


def escaped(text: str) -> str:
    """``text`` with every control character escaped, for a ``#`` comment line (which
    then ends where racesim ends it) or a message (a file name in it stays one line)."""
    return _CONTROL.sub(lambda m: _escape(m.group()), text)


def _escape(c: str) -> str:
    return f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}"


def check_target(name: str, option: str = "--html") -> Path:
    """An output file's path, checked before anything runs; InputError (one line) when
    unusable: a folder, a missing folder, or a path through another user's link."""
    path = Path(name)
    if not name or name.endswith(("/", "\\")) or path.is_dir():
        raise InputError(f"{option} {escaped(name)}: names a folder; name the file to write")
    folder = path.parent
    if not folder.is_dir():
        raise InputError(
            f"{option} {escaped(name)}: folder {escaped(str(folder))} does not exist; create it"
            " or name another file"
        )
    fd, _ = open_folder(folder, create=False, option=option)
    os.close(fd)
    return path


def save(text: str, path: Path) -> Path:
    """Write ``text`` to ``path`` atomically; return the path.

    The folder is reached by :func:`open_folder` (missing folders are made), so no
    link another user planted is followed on the way. The temporary file gets an
    unguessable name and is created with ``O_CREAT | O_EXCL | O_NOFOLLOW`` relative
    to the opened folder, so a name planted in a folder someone else can write to is
    never followed; the rename replaces ``path`` itself, never what a link at
    ``path`` points to.
    """
    folder, _ = open_folder(path.parent, create=True)
    try:
        tmp, fd = _create_temporary(folder, path.name)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, path.name, src_dir_fd=folder, dst_dir_fd=folder)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=folder)
            raise
    finally:
        os.close(folder)
    return path


_HOPS = 40
"""Links followed on one path at most (as the kernel's own limit)."""
_DIR = getattr(os, "O_PATH", os.O_RDONLY) | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
"""A folder opened only to be walked through and written in (``O_PATH`` needs no
read permission on it, as a path through a mode 0711 folder needs none)."""


def open_folder(path: Path, *, create: bool, option: str = "") -> tuple[int, list[Path]]:
    """An open descriptor of folder ``path`` and the folders made on the way.

    The path is walked one name at a time from ``/`` with ``openat(O_NOFOLLOW)``, so
    what is opened is what was checked. A symbolic link on the way is followed only
    when root or racesim's own user owns it (no one else can plant or change such a
    link); any other link is refused with one line naming it. With ``create``,
    missing folders are made (``mkdirat`` never follows a link). A ``..`` written in
    ``path`` is taken lexically (``a/link/..`` is ``a``). ``option`` (e.g. ``--out``)
    starts the messages when the path came from one.
    """
    where = f"{option} {escaped(str(path))}: " if option else f"{escaped(str(path))}: "
    parts = list(Path(os.path.abspath(path)).parts[1:])
    fd = os.open("/", _DIR)
    current, made, hops = Path("/"), [], 0
    try:
        while parts:
            name = parts.pop(0)
            if name in ("", "."):
                continue
            try:
                step = os.open(name, _DIR, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise InputError(
                        f"{where}folder {escaped(str(current / name))} does not exist; create"
                        " it or name another path"
                    ) from None
                with contextlib.suppress(FileExistsError):  # made meanwhile: opened below
                    os.mkdir(name, 0o777, dir_fd=fd)
                    made.append(current / name)
                step = os.open(name, _DIR, dir_fd=fd)
            except OSError as exc:
                if exc.errno not in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
                    raise
                target = _link(fd, current / name)
                hops += 1
                if hops > _HOPS:
                    raise InputError(
                        f"{where}more than {_HOPS} links on the way; name the folder itself"
                    ) from None
                if target.startswith("/"):
                    os.close(fd)
                    fd, current = os.open("/", _DIR), Path("/")
                parts[:0] = (
                    Path(target).parts[1:] if target.startswith("/") else [*Path(target).parts]
                )
                continue
            os.close(fd)
            fd = step
            current = current.parent if name == ".." else current / name
    except InputError:
        os.close(fd)
        raise
    except OSError as exc:
        os.close(fd)
        raise InputError(
            f"{where}cannot write there ({exc.strerror}); name a folder you may write"
        ) from None
    return fd, made


def _link(folder: int, path: Path) -> str:
    """Where the link ``path`` (a name in the open ``folder``) points, if racesim may
    follow it; InputError naming it otherwise (or when it is not a folder at all)."""
    before = os.stat(path.name, dir_fd=folder, follow_symlinks=False)
    if not stat.S_ISLNK(before.st_mode):
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
    me = os.geteuid()
    if before.st_uid not in (0, me):
        raise InputError(
            f"refusing {escaped(str(path))}: a symbolic link owned by uid {before.st_uid},"
            f" and racesim follows only links of root or uid {me} on the way to an output;"
            " fix: name a path without it"
        )
    target = os.readlink(path.name, dir_fd=folder)
    after = os.stat(path.name, dir_fd=folder, follow_symlinks=False)
    if (after.st_dev, after.st_ino, after.st_uid) != (before.st_dev, before.st_ino, before.st_uid):
        raise InputError(f"refusing {escaped(str(path))}: the link changed while it was read")
    return target


_TRIES = 100


def _create_temporary(folder: int, name: str) -> tuple[str, int]:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    for _ in range(_TRIES):
        tmp = f".{name}.{secrets.token_hex(8)}.tmp"
        try:
            return tmp, os.open(tmp, flags, 0o644, dir_fd=folder)
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name next to {name} after {_TRIES} tries")
