"""A cached data directory as a read-only template that every run copies.

A run's SQL runs as its cluster's superuser, which writes files as the server's OS
user (``COPY ... TO``, ``COPY ... TO PROGRAM``, ``ALTER SYSTEM``). So no server
ever runs on the cached directory itself, and nothing the server's user can do
reaches it:

* :func:`seal` makes the template racesim's own: as root, owned by root with the
  server user's group, folders 0750 and files 0640, so the server's user may read
  it (to copy it) and change nothing; as a normal user (the server runs as that
  same user) read-only to the owner, folders 0500 and files 0400.
* :func:`manifest` describes every entry of the template as ``lstat`` sees it:
  type, mode, owner, size, inode, modification and change times. Any write,
  ``chmod``, new, removed or replaced file changes it, and no process without
  root's privileges can set a change time back, so comparing the manifest
  recorded at creation with the template's current one (about 5 ms for a
  1,000-file template) tells whether it is still as made.
* :func:`copy_out` gives a run a private, writable copy owned by the server's
  user (``cp -r`` run as that user, modes 0700/0600).

Example::

    seal(data, user)
    recorded = manifest(data)
    ...
    if manifest(data) == recorded:
        copy_out(data, run_dir / "data", user)
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

from racesim.errors import ProvisionError
from racesim.provision.account import ServerUser, server_env

__all__ = ["copy_out", "manifest", "remove_tree", "seal"]


def seal(data: Path, user: ServerUser) -> None:
    """Make the freshly initdb'ed ``data`` read-only to the server's user (see above)."""
    me = os.geteuid()
    for path in _walk(data):
        st = os.lstat(path)
        if stat.S_ISDIR(st.st_mode):
            mode = 0o750 if user.switch else 0o500
        elif stat.S_ISREG(st.st_mode):
            mode = 0o640 if user.switch else 0o400
        else:
            raise ProvisionError(f"{path}: initdb made something that is not a file or folder")
        if user.switch:
            os.lchown(path, me, user.gid)
        os.chmod(path, mode)


def manifest(data: Path) -> str:
    """One line per entry of ``data`` (itself included): what ``lstat`` says of it."""
    top = str(data)
    lines = [_line(".", os.lstat(top))]
    pending = [top]
    while pending:
        folder = pending.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                st = entry.stat(follow_symlinks=False)
                lines.append(_line(entry.path[len(top) + 1 :], st))
                if stat.S_ISDIR(st.st_mode):
                    pending.append(entry.path)
    lines.sort()
    return "\n".join(lines) + "\n"


def _line(name: str, st: os.stat_result) -> str:
    return (
        f"{name}\t{st.st_mode:o}\t{st.st_uid}\t{st.st_gid}\t{st.st_size}\t{st.st_dev}\t"
        f"{st.st_ino}\t{st.st_mtime_ns}\t{st.st_ctime_ns}"
    )


def _walk(top: Path) -> list[str]:
    """``top`` and everything below it, links not followed."""
    found = [str(top)]
    pending = [str(top)]
    while pending:
        with os.scandir(pending.pop()) as entries:
            for entry in entries:
                found.append(entry.path)
                if entry.is_dir(follow_symlinks=False):
                    pending.append(entry.path)
    return found


def copy_out(data: Path, target: Path, user: ServerUser) -> None:
    """A private copy of the template ``data`` at ``target`` (new), owned by ``user``."""
    os.mkdir(target, 0o700)
    user.chown(target)
    cp = shutil.which("cp")
    if cp is None or not sys.platform.startswith("linux"):  # -T and --no-preserve: GNU cp
        _copy_in_python(data, target, user)
        return
    # Run as the server's user: the copy is its own, made with modes 0700/0600
    # whatever the template's (--no-preserve=mode and umask 077).
    done = subprocess.run(
        [cp, "-rT", "--no-preserve=mode", str(data), str(target)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=server_env(),
        umask=0o077,
        user=user.run_uid,
        group=user.run_gid,
        extra_groups=user.run_groups,
    )
    if done.returncode != 0:
        raise ProvisionError(
            f"copying racesim's cached data directory {data} failed: {done.stderr.strip()}; "
            "fix: run `racesim clean` and try again"
        )


def _copy_in_python(data: Path, target: Path, user: ServerUser) -> None:
    shutil.copytree(data, target, symlinks=True, copy_function=shutil.copyfile, dirs_exist_ok=True)
    for path in _walk(target):
        os.chmod(path, 0o700 if os.path.isdir(path) else 0o600)
        if user.switch:
            os.lchown(path, user.uid, user.gid)


def remove_tree(path: Path) -> None:
    """Remove the folder ``path`` and everything in it, read-only folders of ours
    included; a link or anything but a folder is left alone."""
    me = os.geteuid()
    try:
        if not _own_folder(str(path), me):
            return
    except OSError:
        return
    if me != 0:  # root may remove from read-only folders anyway
        try:
            folders = [p for p in _walk(path) if _own_folder(p, me)]
        except OSError:
            folders = []
        for folder in folders:
            try:
                os.chmod(folder, 0o700)
            except OSError:
                continue
    shutil.rmtree(path, ignore_errors=True)


def _own_folder(path: str, me: int) -> bool:
    st = os.lstat(path)
    return stat.S_ISDIR(st.st_mode) and st.st_uid == me
