"""Where systems are found by name: installed entry points and imported modules.

Two entry point groups: ``racesim.systems`` maps an installed system's name to its
``package.module:attribute``; ``racesim.system_kinds`` maps a prefix
(``spec:FILE.spec``, ``commands:FILE.toml``) to a module that makes a system from
the rest of the name. ``racesim.system.resolve`` turns what these find into a
``System``; nothing here knows what a system is.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from importlib import metadata
from typing import Any, Protocol

from racesim.errors import InputError

__all__ = [
    "GROUP",
    "KINDS",
    "Kind",
    "by_name",
    "import_attribute",
    "kind_of",
    "registered",
    "runs_code",
]

GROUP = "racesim.systems"
"""The entry point group installed systems register under, by name."""

KINDS = "racesim.system_kinds"
"""The entry point group of systems a prefix names (``spec:FILE.spec``,
``commands:FILE.toml``): the entry point's name is the prefix, its value a module
with ``from_name(text) -> System`` and, optionally, ``made(text) -> System | None``
(the system ``text`` names if it has been made already) and ``RUNS_CODE`` (False
when the systems it makes run no code of the user's, so a scenario file may name
one on its own; True when absent)."""

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


class Kind(Protocol):
    """A module of the ``racesim.system_kinds`` group."""

    def from_name(self, text: str) -> Any: ...


def kind_of(text: str) -> Kind | None:
    """The system kind ``text``'s prefix names, if one is installed."""
    prefix, sep, _ = text.partition(":")
    if not sep or not prefix.isidentifier():
        return None
    for ep in metadata.entry_points(group=KINDS, name=prefix):
        kind: Kind = ep.load()
        return kind
    return None


def runs_code(kind: Kind) -> bool:
    """Whether the systems ``kind`` makes run code of the user's (see ``KINDS``)."""
    return bool(getattr(kind, "RUNS_CODE", True))


def registered() -> dict[str, str]:
    """Installed systems: entry point name -> ``package.module:attribute``.

    A name two distributions register differently maps to the first; ``resolve``
    refuses it.
    """
    found: dict[str, str] = {}
    for ep in metadata.entry_points(group=GROUP):
        found.setdefault(ep.name, ep.value)
    return found


def by_name(name: str, where: str) -> str:
    """The ``package.module:attribute`` an installed system's ``name`` stands for;
    InputError (starting with ``where``) when none or two different ones do."""
    if not _NAME.match(name):
        raise InputError(
            f"{where}: expected a system name or package.module:attribute, got {name[:80]!r}"
        )
    values = sorted(
        {
            (ep.value, ep.dist.name if ep.dist else "?")
            for ep in metadata.entry_points(group=GROUP)
            if ep.name == name
        },
        key=lambda pair: (pair[1], pair[0]),
    )
    if not values:
        names = ", ".join(sorted(registered())) or "(none installed)"
        raise InputError(
            f"{where}: no system named {name!r} is installed (installed: {names});"
            " name one of them, or give package.module:attribute"
        )
    if len({value for value, _ in values}) > 1:
        which = " and ".join(f"{dist} ({value})" for value, dist in values)
        raise InputError(
            f"{where}: the system name {name!r} is registered by {which};"
            " give package.module:attribute instead"
        )
    return values[0][0]


def import_attribute(text: str, where: str, *, here: bool) -> Any:
    """The attribute ``package.module:attribute`` names, its module imported; with
    ``here``, the current directory is searched first (as uvicorn and gunicorn do), so
    a module of the project racesim runs in is found without installing it."""
    module, _, attr = text.partition(":")
    if not module or not attr:
        raise InputError(f"{where}: expected package.module:attribute, got {text[:80]!r}")
    cwd = os.getcwd()
    if here and cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        return getattr(importlib.import_module(module), attr)
    except Exception as exc:  # the user's module: any failure of its import is bad input
        detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        raise InputError(
            f"{where}: cannot load {text[:80]!r} ({type(exc).__name__}: {detail});"
            " check the module is importable and defines the attribute"
        ) from None
