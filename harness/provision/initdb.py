"""Making a data directory: ``initdb`` with racesim's flags, then the superuser's
password set in single-user mode as a SCRAM verifier (the server's user never sees the
password itself).

Example::

    make(binaries, user, entry / "data", secrets.token_urlsafe(24))
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import subprocess
from pathlib import Path

from racesim.errors import ProvisionError
from racesim.provision.account import SUPERUSER, ServerUser, server_env
from racesim.provision.binaries import Binaries

__all__ = ["ITERATIONS", "make", "scram_verifier"]


def make(binaries: Binaries, user: ServerUser, data: Path, password: str) -> None:
    """initdb an empty directory ``data`` (the server user's) with racesim's flags, and
    give the superuser ``password``."""
    argv = [
        str(binaries.tool("initdb")),
        "-D",
        str(data),
        "-U",
        SUPERUSER,
        # Its pg_hba.conf is never used: racesim starts the server with its own.
        "--auth=trust",
        "--encoding=UTF8",
        "--locale=C",
        "--no-sync",
        "--no-instructions",
        # 1 MB WAL segments instead of 16 MB: a third of the data dir to copy per start.
        "--wal-segsize=1",
    ]
    if binaries.version >= 18:
        argv.append("--no-data-checksums")  # checksums are on by default since 18
    _server_run(argv, binaries, user, data.parent, "initdb")
    # Single-user mode gets only the SCRAM verifier: the server's user never sees the
    # password, which stays in the entry's 0600 file.
    set_password = f"ALTER ROLE {SUPERUSER} PASSWORD '{scram_verifier(password)}'\n"
    single = [str(binaries.tool("postgres")), "--single", "-F", "-D", str(data)]
    _server_run(
        [*single, "-c", "dynamic_shared_memory_type=mmap", "postgres"],
        binaries,
        user,
        data.parent,
        "postgres --single",
        stdin=set_password,
    )


def _server_run(
    argv: list[str],
    binaries: Binaries,
    user: ServerUser,
    cwd: Path,
    what: str,
    stdin: str | None = None,
) -> None:
    done = subprocess.run(
        argv,
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        cwd=cwd,
        env=server_env(),
        user=user.run_uid,
        group=user.run_gid,
        extra_groups=user.run_groups,
    )
    if done.returncode != 0:
        raise ProvisionError(
            f"{what} ({binaries.bindir}) failed with code {done.returncode}:\n"
            f"{done.stdout}{done.stderr}"
        )


ITERATIONS = 16
"""SCRAM iterations for racesim's own passwords. Key stretching protects guessable
passwords; racesim's are 192 random bits, out of reach of any guessing, so every
connection is spared PostgreSQL's default 4096 rounds on both sides."""


def scram_verifier(password: str, *, iterations: int = ITERATIONS) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for ``password`` (RFC 5802/7677)."""
    salt = os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()
    b64 = base64.b64encode
    return (
        f"SCRAM-SHA-256${iterations}:{b64(salt).decode()}"
        f"${b64(stored_key).decode()}:{b64(server_key).decode()}"
    )
