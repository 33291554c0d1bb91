"""Scenario files: TOML data that becomes a Plan, with every problem reported by line.

A scenario is data, never code: nothing in it is evaluated or put into SQL.
Its programs, options, faults, calls, stores and invariants are checked against
the system under test (:class:`racesim.system.System`): the one its ``system``
key names, else the one the caller gives, else the reference system. A scenario file builds a Plan; it never runs it.

    name = "two bumps lose an update"
    stores = ["naive", "locked"]

    schedule = [
      "T+0 a: read",
      "T+1 b: read",
      "+6m",
      "T+2 a: write",
      "T+3 b: write",
    ]

    [actors]
    a = { program = "bump" }
    b = { program = "bump" }

    [expect]
    naive = { breaks = "no-lost-update", at = "T+3" }
    locked = "holds"
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from racesim.errors import InputError
from racesim.formats.bounds import scan
from racesim.formats.reading import MAX_BYTES as MAX_BYTES
from racesim.formats.reading import discover as discover
from racesim.formats.reading import read as read
from racesim.formats.validate import Lines, Validator
from racesim.model.plan import Plan
from racesim.model.verdict import Expectation as Expectation
from racesim.system import DEFAULT_SYSTEM, System, imports_code, loaded, resolve


@dataclass(frozen=True)
class Scenario:
    path: str
    name: str
    description: str
    plan: Plan
    stores: tuple[str, ...]
    expect: dict[str, Expectation]
    system: System
    """The system the scenario was checked against (and runs on)."""


def load(path: str | Path, system: System | str | None = None) -> Scenario:
    """Read and check a scenario file; raise InputError listing every problem.

    ``system`` (a ``System`` or its name) is the one the caller runs: a file that
    names another is refused, and a file that names none runs on it (on the
    reference system when ``system`` is None).
    """
    p = Path(path)
    raw = read(p)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InputError(f"{p}:{line}: not UTF-8 text; save the scenario as UTF-8 TOML") from None
    return parse(text, str(p), system)


def parse(text: str, path: str = "<scenario>", system: System | str | None = None) -> Scenario:
    """Parse scenario text; every problem is one line naming file, line and fix.

    The text is first scanned once for its shape (nesting, dotted keys, counts) so
    that nothing reaches the TOML parser that could make it recurse too deep or
    work for long; see :mod:`racesim.formats.bounds`.
    """
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise InputError(f"{path}:{line}: binary data (NUL byte); a scenario is a TOML text file")
    if len(text) > MAX_BYTES:
        raise InputError(f"{path}:1: text is over {MAX_BYTES} characters; split it")
    shape = scan(text, path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        raise InputError(
            f"{path}:{m.group(1) if m else 1}: TOML syntax error: {exc}; fix the syntax"
        ) from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise InputError(
            f"{path}:1: the TOML parser gave up ({type(exc).__name__}); simplify the file"
        ) from None
    lines = Lines(text, shape)
    given = None if system is None else resolve(system)
    found = _system(data, path, lines, given)
    return Scenario(path, *Validator(path, lines, found).scenario(data), found)


def _system(data: dict[str, Any], path: str, lines: Lines, given: System | None) -> System:
    """The scenario's system: its ``system`` key, else ``given``, else the reference.

    A key naming another system than ``given`` (``--system``) is refused.
    """
    if "system" not in data:
        return given if given is not None else resolve(DEFAULT_SYSTEM)
    line = lines.key("system")
    spec = data["system"]
    if not isinstance(spec, str) or not spec.strip():
        raise InputError(
            f"{path}:{line}: system must be a string: an installed system's name or"
            ' package.module:attribute, e.g. system = "jobqueue"'
        )
    if imports_code(spec):
        return _named_by_caller(spec.strip(), path, line, given)
    found = resolve(spec.strip(), where=f"{path}:{line}: system")
    if given is not None and given is not found:
        raise InputError(
            f"{path}:{line}: the scenario is for system {found.name}, but --system names"
            f" {given.name}; drop --system or run another scenario"
        )
    return found


def _named_by_caller(text: str, path: str, line: int, given: System | None) -> System:
    """The system ``package.module:attribute`` of a scenario file, only when the
    command line (``--system``) or the caller (``race(system=...)``) names that same
    system: a scenario file is data and never has code imported on its own."""
    fix = f"fix: pass --system {text} (in pytest, race(..., system={text!r}))"
    if given is None:
        raise InputError(
            f"{path}:{line}: system {text[:80]!r} is not an installed system, and a scenario"
            f" file alone never has a module imported; {fix}"
        )
    if loaded(text) is not given:
        raise InputError(
            f"{path}:{line}: the scenario is for system {text[:80]!r}, but --system names"
            f" {given.name}; {fix}, or run another scenario"
        )
    return given
