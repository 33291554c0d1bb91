"""The OS user the server runs as, and what that user may reach.

PostgreSQL refuses to run as root, so when racesim is root the server runs as an
account of racesim's own, ``racesim``: a system account with no login shell
(``/usr/sbin/nologin``), no home (``/nonexistent``) and a group of its own, made
with ``useradd --system`` the first time it is missing. It is in no other group,
so it reads nothing but what every account may read and racesim's own
directories (never the machine's PostgreSQL data, which the shared ``postgres``
account could). Otherwise the server runs as racesim's own user.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from racesim.errors import ProvisionError

__all__ = [
    "ACCOUNT",
    "SUPERUSER",
    "ServerUser",
    "ensure_account",
    "server_env",
    "server_user",
    "user_may",
]

SUPERUSER = "postgres"
"""The cluster's superuser role."""

ACCOUNT = "racesim"
"""The OS account a root racesim runs its servers as."""

_NOLOGIN = "/usr/sbin/nologin"
_HOME = "/nonexistent"


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
    """Self when not root; else racesim's own account (:data:`ACCOUNT`), made if missing."""
    if os.geteuid() != 0:
        entry = pwd.getpwuid(os.geteuid())
        return ServerUser(entry.pw_name, entry.pw_uid, entry.pw_gid, (), switch=False)
    return ensure_account(ACCOUNT)


def ensure_account(name: str) -> ServerUser:
    """The system account ``name`` to run servers as (root only); created when missing.

    The server gets the account's own group alone, whatever other groups the
    account was later put in.
    """
    entry = _lookup(name) or _create(name)
    if entry.pw_uid == 0 or entry.pw_gid == 0:
        raise ProvisionError(
            f"the {name!r} account that runs racesim's PostgreSQL has root's uid or group; "
            f"fix: give it its own (usermod), or remove it and let racesim make it again"
        )
    return ServerUser(name, entry.pw_uid, entry.pw_gid, (), switch=True)


def _lookup(name: str) -> pwd.struct_passwd | None:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        return None


def _create(name: str) -> pwd.struct_passwd:
    tools = "/usr/sbin:/usr/bin:/sbin:/bin"
    useradd = shutil.which("useradd", path=tools)
    shell = _NOLOGIN if os.path.exists(_NOLOGIN) else "/bin/false"
    try:
        grp.getgrnam(name)
        group = ["--gid", name]  # left by an earlier account of that name
    except KeyError:
        group = ["--user-group"]
    argv = [
        *group,
        "--system",
        "--no-create-home",
        "--home-dir",
        _HOME,
        "--shell",
        shell,
        "--comment",
        "racesim throwaway PostgreSQL servers",
        name,
    ]
    why = "no useradd program"
    if useradd is not None:
        done = subprocess.run(
            [useradd, *argv],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env={"PATH": tools, "LC_ALL": "C"},
            timeout=60,
        )
        why = " ".join(done.stderr.split()) or f"useradd exited with {done.returncode}"
    made = _lookup(name)  # also when a racesim beside us made it first
    if made is None:
        raise ProvisionError(
            f"running as root, racesim runs PostgreSQL as its own account {name!r}, which "
            f"is missing and could not be made ({why}); fix: create it with `useradd "
            f"--system --user-group --home-dir {_HOME} --shell {_NOLOGIN} {name}`, or run "
            "racesim as a normal user, or set RACESIM_DSN"
        )
    return made


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
