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

import json
import math
import re
from typing import Any

from racesim.files import check_target, open_folder, save
from racesim.formats.commits import KEY, split_by_default
from racesim.model.plan import ClockMove, Plan, Step, spell_delta

__all__ = ["check_target", "open_folder", "save", "scenario_text"]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return repr(value)
    if isinstance(value, list | tuple):  # a function's arguments (racesim.code)
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return (
            "{" + ", ".join(f"{json.dumps(str(k))} = {_value(v)}" for k, v in value.items()) + "}"
        )
    return json.dumps(str(value))  # a JSON string is a valid TOML basic string


def _key(name: str) -> str:
    """``name`` as a TOML key: bare when it may be, else a quoted string."""
    return name if _BARE_KEY.fullmatch(name) else _value(name)


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
    ``split_commits = false`` is written when the run did not split commits (a file
    without it splits them; racesim.formats.commits).
    """
    lines = [f"system = {_value(system)}"] if system else []
    lines.append(f"name = {_value(name)}")
    if description:
        lines.append(f"description = {_value(description)}")
    lines += [f"stores = [{_value(store)}]", f"seed = {plan.seed}"]
    if not (split_by_default() if plan.split_commits is None else plan.split_commits):
        lines.append(f"{KEY} = false")  # runs split commits unless a file says otherwise
    lines += ["", "schedule = ["]
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
        fields += [f"{_key(k)} = {_value(v)}" for k, v in sorted(actor.options.items())]
        if actor.faults:
            fields.append(f"faults = [{', '.join(_value(f) for f in sorted(actor.faults))}]")
        lines.append(f"{_key(actor.name)} = {{ {', '.join(fields)} }}")
    lines += ["", "[expect]"]
    if breaks:
        lines.append(f"{_key(store)} = {{ breaks = {_value(breaks)}, at = {_value(at)} }}")
    else:
        lines.append(f'{_key(store)} = "holds"')
    return "\n".join(lines) + "\n"
