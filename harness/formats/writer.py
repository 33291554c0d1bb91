"""Writing a plan back out as a scenario file that ``racesim run`` and ``replay`` read.

The text depends only on its inputs (no timestamps, no random names), so the
same counterexample is written byte for byte the same. Files are written
atomically (a temporary file renamed into place), so a killed run leaves either
the old file or the new one.

Example::

    text = scenario_text(plan, "legacy", "no-foreign-clear", "T+4", name="found by explore")
    path = save(text, Path(".cache/racesim/counterexamples") / "legacy-no-foreign-clear.toml")
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from pathlib import Path
from typing import Any

from racesim.errors import InputError
from racesim.model.plan import ClockMove, Plan, Step, spell_delta

__all__ = ["save", "scenario_text"]


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return json.dumps(str(value))  # a JSON string is a valid TOML basic string


def scenario_text(
    plan: Plan,
    store: str,
    breaks: str,
    at: str,
    *,
    name: str,
    description: str = "",
    system: str = "",
) -> str:
    """The scenario file for ``plan``, expected to break ``breaks`` at label ``at``.

    ``system`` is the file's ``system =`` value (left out for the reference system).
    """
    lines = [f"system = {_value(system)}"] if system else []
    lines.append(f"name = {_value(name)}")
    if description:
        lines.append(f"description = {_value(description)}")
    lines += [f"stores = [{_value(store)}]", f"seed = {plan.seed}", "", "schedule = ["]
    for entry in plan.entries:
        if isinstance(entry, ClockMove):
            text = f"{entry.label} {spell_delta(entry.delta)}".strip()
        elif isinstance(entry, Step):
            text = f"{entry.label} {entry.actor}: {entry.call}".strip()
        else:
            raise ValueError(f"cannot write {type(entry).__name__} entries (explorers make none)")
        lines.append(f"  {_value(text)},")
    lines += ["]", "", "[actors]"]
    for actor in plan.actors:
        fields = [f"program = {_value(actor.program)}"]
        fields += [f"{k} = {_value(v)}" for k, v in sorted(actor.options.items())]
        if actor.faults:
            fields.append(f"faults = [{', '.join(_value(f) for f in sorted(actor.faults))}]")
        lines.append(f"{actor.name} = {{ {', '.join(fields)} }}")
    lines += ["", "[expect]"]
    if breaks:
        lines.append(f"{store} = {{ breaks = {_value(breaks)}, at = {_value(at)} }}")
    else:
        lines.append(f'{store} = "holds"')
    return "\n".join(lines) + "\n"


def check_target(name: str, option: str = "--html") -> Path:
    """An output file's path, checked before anything runs; InputError (one line) when
    unusable."""
    path = Path(name)
    if not name or name.endswith(("/", "\\")) or path.is_dir():
        raise InputError(f"{option} {name}: names a folder; name the file to write")
    folder = path.parent
    if not folder.is_dir():
        raise InputError(
            f"{option} {name}: folder {folder} does not exist; create it or name another file"
        )
    return path


def save(text: str, path: Path) -> Path:
    """Write ``text`` to ``path`` atomically; return the path.

    The temporary file gets an unguessable name and is created with
    ``O_CREAT | O_EXCL | O_NOFOLLOW`` relative to the opened folder, so a name
    planted in a folder someone else can write to is never followed; the rename
    replaces ``path`` itself, never what a link at ``path`` points to.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        tmp, fd = _create_temporary(folder, path.name)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, path.name, src_dir_fd=folder, dst_dir_fd=folder)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=folder)
            raise
    finally:
        os.close(folder)
    return path


_TRIES = 100


def _create_temporary(folder: int, name: str) -> tuple[str, int]:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    for _ in range(_TRIES):
        tmp = f".{name}.{secrets.token_hex(8)}.tmp"
        try:
            return tmp, os.open(tmp, flags, 0o644, dir_fd=folder)
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name next to {name} after {_TRIES} tries")
