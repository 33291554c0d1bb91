"""What racesim's command parsers share: a parser that reports bad options in one
line, the system a command runs (resolved here, once, and handed inward), and the
check that an output folder can be written before any work starts."""

from __future__ import annotations

import argparse
import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

from racesim.errors import InputError

if TYPE_CHECKING:
    from racesim.system import System


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise InputError(f"racesim: {message}; see racesim --help")


def named_system(args: argparse.Namespace) -> System | None:
    """The system ``--system`` names; None when the command line names none."""
    from racesim.system import resolve

    given: str | None = getattr(args, "system", None)
    return None if given is None else resolve(given)


def system_of(args: argparse.Namespace) -> System:
    """The system a command runs: the one ``--system`` names, else the reference system."""
    from racesim.system import DEFAULT_SYSTEM, resolve

    named = named_system(args)
    return named if named is not None else resolve(DEFAULT_SYSTEM)


def writable_folder(path: Path, flag: str, *, given: bool = True) -> list[Path]:
    """Make sure files can be written into ``path`` before any work starts.

    Creates the folder (and missing parents, never through another user's link; see
    ``racesim.files.open_folder``) and writes and removes a probe file in
    it; returns the folders it created, deepest first. InputError (one line) when it
    cannot, or when a ``given`` path lies in racesim's own cache (which ``racesim
    clean`` and eviction empty).
    """
    from racesim.files import escaped, open_folder
    from racesim.provision.cache import cache_root

    where = f"{flag} {escaped(str(path))}"
    try:
        cache: Path | None = Path(os.path.realpath(cache_root()))
    except OSError:  # a cache no one can look at: no output can be inside it either
        cache = None
    if given and cache is not None and Path(os.path.realpath(path)).is_relative_to(cache):
        raise InputError(
            f"{where}: is inside racesim's own cache ({escaped(str(cache))}), which racesim"
            " empties; name a folder outside it"
        )
    try:
        if path.exists() and not path.is_dir():
            raise InputError(f"{where}: is a file, not a folder; name a folder (made if missing)")
    except OSError as exc:
        raise InputError(
            f"{where}: cannot look at it ({exc.strerror}); name another folder"
        ) from None
    fd, missing = open_folder(path, create=True, option=flag)
    missing.reverse()
    try:
        probe = f".racesim-probe.{os.getpid()}"
        os.close(
            os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=fd)
        )
        os.unlink(probe, dir_fd=fd)
    except OSError as exc:
        for folder in missing:
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise InputError(
            f"{where}: cannot write there ({exc.strerror}); name a folder you may write"
        ) from None
    finally:
        os.close(fd)
    return missing
