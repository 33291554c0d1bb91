"""The OS user the server runs as, and what that user may reach.

PostgreSQL refuses to run as root, so when racesim is root the server runs as the
unprivileged ``postgres`` user (else ``nobody``); otherwise as racesim's own user.
"""

from __future__ import annotations

import os
import pwd
from dataclasses import dataclass
from pathlib import Path

from racesim.errors import ProvisionError

__all__ = ["SUPERUSER", "ServerUser", "server_env", "server_user", "user_may"]

SUPERUSER = "postgres"
"""The cluster's superuser role."""


@dataclass(frozen=True)
class ServerUser:
    """The OS user the server runs as; ``switch`` means racesim is root and must drop to it."""

    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]
    switch: bool

    @property
    def run_uid(self) -> int | None:
        """``user=`` for ``subprocess``: this uid when switching, else None (stay)."""
        return self.uid if self.switch else None

    @property
    def run_gid(self) -> int | None:
        """``group=`` for ``subprocess``."""
        return self.gid if self.switch else None

    @property
    def run_groups(self) -> list[int] | None:
        """``extra_groups=`` for ``subprocess``: drops root's supplementary groups."""
        return list(self.groups) if self.switch else None

    def chown(self, path: Path) -> None:
        """Give ``path`` (one of racesim's own directories) to this user."""
        if self.switch:
            os.chown(path, self.uid, self.gid)


def server_user() -> ServerUser:
    """Self when not root; else the unprivileged ``postgres`` user, or ``nobody``."""
    if os.geteuid() != 0:
        entry = pwd.getpwuid(os.geteuid())
        return ServerUser(entry.pw_name, entry.pw_uid, entry.pw_gid, (), switch=False)
    for name in ("postgres", "nobody"):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        if entry.pw_uid != 0:
            groups = tuple(os.getgrouplist(name, entry.pw_gid))
            return ServerUser(name, entry.pw_uid, entry.pw_gid, groups, switch=True)
    raise ProvisionError(
        "running as root, but neither a 'postgres' nor a 'nobody' user exists to run "
        "the server (PostgreSQL refuses to run as root); fix: run racesim as a normal "
        "user, create a 'postgres' user, or set RACESIM_DSN"
    )


def server_env() -> dict[str, str]:
    """Environment for the server's programs."""
    # A clean environment: PGPORT, PGDATA and friends would otherwise steer the server.
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "LANG": "C"}


def user_may(user: ServerUser, path: Path, mode: int) -> bool:
    """Whether ``user`` may access ``path`` with ``mode`` (checks every parent too)."""
    bits = {os.R_OK: 4, os.W_OK: 2, os.X_OK: 1}
    wanted = sum(b for flag, b in bits.items() if mode & flag)
    resolved = Path(os.path.realpath(path))
    for parent in reversed(resolved.parents):
        if not _permits(user, parent, 1):
            return False
    return _permits(user, resolved, wanted)


def _permits(user: ServerUser, path: Path, wanted: int) -> bool:
    try:
        st = path.stat()
    except OSError:
        return False
    if st.st_uid == user.uid:
        shift = 6
    elif st.st_gid == user.gid or st.st_gid in user.groups:
        shift = 3
    else:
        shift = 0
    return (st.st_mode >> shift) & wanted == wanted
