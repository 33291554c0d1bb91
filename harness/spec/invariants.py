"""SQL invariants of a spec: queries that return no rows while they hold, kept beside
the spec so the ``.spec`` stays a plain isolationtester file: ``FILE.spec.toml`` (or a
file given with ``--invariants``)::

    [invariants]
    one-seat-per-person = "SELECT person FROM seats GROUP BY person HAVING count(*) > 1"

Example::

    invariants = load_invariants(companion(Path("seats.spec")))
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from racesim.errors import InputError
from racesim.formats.bounds import scan
from racesim.formats.names import control_character, escaped
from racesim.spec import readonly, statements

__all__ = ["Invariant", "companion", "invariant_failed", "load_invariants"]

MAX_INVARIANTS = 100
MAX_INVARIANT_BYTES = 64 * 1024


@dataclass(frozen=True)
class Invariant:
    name: str
    sql: str
    line: int
    path: str = ""
    """The invariants file it comes from."""

    @property
    def where(self) -> str:
        """``file:line`` (or ``line N``) for messages."""
        return f"{self.path}:{self.line}" if self.path else f"line {self.line}"


def companion(spec_path: Path) -> Path:
    return spec_path.with_name(spec_path.name + ".toml")


def load_invariants(path: Path) -> tuple[Invariant, ...]:
    """The ``[invariants]`` table of ``path``: name -> SQL that returns no rows when it holds."""
    try:
        if path.stat().st_size > MAX_INVARIANT_BYTES:
            raise InputError(f"{path}: too big for an invariants file; fix: keep it under 64 KiB")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read ({exc}); fix: check the path") from None
    try:
        # The TOML parser recurses per nesting level: bound the text before it.
        scan(text, str(path), "an invariants file", needs=0)
    except InputError as exc:
        raise InputError(
            [
                f'{problem}; fix: write name = "SQL" lines under [invariants]'
                for problem in exc.problems
            ]
        ) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = getattr(exc, "lineno", None) or _line_in(str(exc))
        raise InputError(
            f'{path}:{line}: not TOML ({exc}); fix: write name = "SQL" lines'
        ) from None
    table = data.get("invariants")
    problems = [
        f"{path}:{_find(text, k)}: unknown key {k!r}; fix: only [invariants]"
        for k in data
        if k != "invariants"
    ]
    if not isinstance(table, dict) or not table:
        problems.append(
            f'{path}:1: no [invariants] table; fix: add [invariants] with name = "SELECT ..." '
            "lines (queries that return no rows while the invariant holds)"
        )
        raise InputError(problems)
    shown = escaped(str(path))
    keys = _key_lines(text)
    out: list[Invariant] = []
    for name, sql in table.items():
        line = keys.get(name) or _find(text, name)
        problem = _name_problem(name)
        if problem:
            problems.append(f"{shown}:{line}: invariant name {problem}")
            continue
        if not isinstance(sql, str) or not sql.strip():
            problems.append(
                f'{path}:{line}: invariant {name!r} is not an SQL string; fix: name = "SELECT ..."'
            )
            continue
        if statements.count(sql) > 1:
            problems.append(
                f"{shown}:{line}: invariant {name!r} holds more than one statement; fix: one"
                " query (SELECT ...) that returns no rows while the invariant holds"
            )
            continue
        out.append(Invariant(name, sql.strip().rstrip(";"), line, str(path)))
    if len(out) > MAX_INVARIANTS:
        problems.append(f"{path}: more than {MAX_INVARIANTS} invariants; fix: keep fewer")
    if problems:
        raise InputError(problems)
    return tuple(out)


def _key_lines(text: str) -> dict[str, int]:
    """The line of each ``key = value`` line's key, read as TOML reads it (so quoted
    keys with escapes are found too)."""
    found: dict[str, int] = {}
    for n, line in enumerate(text.split("\n"), 1):
        if "=" not in line or line.lstrip().startswith(("[", "#")):
            continue
        try:
            data = tomllib.loads(line)
        except tomllib.TOMLDecodeError:
            continue
        for key in data:
            found.setdefault(key, n)
    return found


def _name_problem(name: str) -> str:
    """Why ``name`` cannot name an invariant ("" when it can): it shows in messages,
    in a saved .spec's comments and in file names, so it must be a visible line."""
    if not name.strip():
        return "is empty; fix: give each invariant a name, e.g. one-seat-per-person"
    bad = control_character(name)
    if bad is not None:
        return (
            f"{escaped(name)[:60]!r} holds the control character {bad}; fix: a name on one"
            " line, without control characters"
        )
    return ""


def _line_in(message: str) -> int:
    words = message.replace(",", " ").replace(")", " ").split()
    for i, w in enumerate(words[:-1]):
        if w == "line" and words[i + 1].isdigit():
            return int(words[i + 1])
    return 1


def _find(text: str, key: str) -> int:
    for n, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith((key, f'"{key}"', f"'{key}'")):
            return n
    return 1


def invariant_failed(inv: Invariant, exc: readonly.Failed, bound: float) -> str:
    """The one line for an invariant query that failed while it was checked."""
    head = f"{inv.where}: invariant {inv.name!r}"
    if exc.wrote:
        return (
            f"{head} tries to write ({exc.message}), and invariants run read-only; fix: a"
            " query that only reads and returns no rows while the invariant holds"
        )
    if exc.timed_out:
        return (
            f"{head} ran past the step bound ({bound:g} s) and was canceled; fix: a query that"
            " answers within the bound (or a larger --step-timeout)"
        )
    return (
        f"{head} failed: {exc.message}; fix: a query over the spec's tables that returns"
        " no rows while it holds"
    )
