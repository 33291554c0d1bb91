"""Split commits in scenario files: a program's autocommit statement that changes
data runs as two steps, ``NAME`` (``BEGIN`` and the statement) and ``NAME/commit``
(its ``COMMIT``), so a schedule can race another session between a statement's
work and its commit (racesim.engine.commit_steps).

Runs split such statements by default; ``--no-split-commits`` (which sets
``RACESIM_SPLIT_COMMITS=0`` for the processes a command starts) runs each to its
commit in one step. A scenario file may say which it was written for with
``split_commits = true|false``; without the key, a file whose schedule holds a
``NAME/commit`` step splits, and any other follows the command (by default: split).
Counterexamples are saved with ``split_commits = false`` when their run did not split. A ``NAME/commit`` step may only come as the same actor's next step
after its ``NAME`` step; whether ``NAME`` was a statement that splits (a single
``INSERT``, ``UPDATE``, ``DELETE`` or ``MERGE`` sent outside a transaction block)
only the run can tell, and a run whose program makes another call than the
schedule says stops with that mismatch.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from racesim.model.plan import Entry, Step

__all__ = ["COMMIT", "ENV", "KEY", "base", "checked", "split_by_default"]

COMMIT = "/commit"
"""What a split statement's second step adds to the call's name."""
ENV = "RACESIM_SPLIT_COMMITS"
"""``0`` runs every statement to its commit in one step; anything else (or unset) splits."""
KEY = "split_commits"
"""The scenario file's key."""


def split_by_default() -> bool:
    """Whether runs split commits when neither the plan nor the caller says."""
    return os.environ.get(ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def base(call: str, calls: frozenset[str]) -> str | None:
    """The statement's call a ``NAME/commit`` step commits, when ``call`` is one (and
    not a call of the program's own with that name); else None."""
    if call in calls or not call.endswith(COMMIT):
        return None
    name = call.removesuffix(COMMIT)
    return name if name in calls else None


def checked(
    value: object, key_line: int, calls: dict[str, frozenset[str]], entries: Sequence[Entry]
) -> tuple[bool | None, list[tuple[int, str]]]:
    """A scenario file's ``split_commits`` and what is wrong with it and with the
    schedule's ``NAME/commit`` steps, as (line, message): ``calls`` are each actor's
    program's calls, ``entries`` the schedule. Not given, it is True when the
    schedule holds a commit step (the schedule splits) and None otherwise (the
    command decides)."""
    out: list[tuple[int, str]] = []
    split = value if isinstance(value, bool) else None
    if value is not None and split is None:
        out.append((key_line, f"{KEY} must be true or false"))
    last: dict[str, str] = {}
    found = False
    for step in entries:
        if not isinstance(step, Step):
            continue
        actor, call, line = step.actor, step.call, step.line or 1
        name = base(call, calls.get(actor, frozenset()))
        if name is not None and split is False:
            out.append(
                (
                    line,
                    f"{actor}: {call} is the commit step of a split statement, but the file"
                    f" sets {KEY} = false; drop the step or set {KEY} = true",
                )
            )
        elif name is not None and last.get(actor) != name:
            out.append(
                (
                    line,
                    f"{actor}: {call} commits {actor}'s {name} statement and must be {actor}'s"
                    f" next step after its {name} step; move it there",
                )
            )
        last[actor] = call
        found = found or name is not None
    return (True if found and split is None else split), out
