"""A linear look at TOML text before it is parsed: nesting, dotted keys and item counts.

Python's TOML parser recurses once per nested array or inline table and does work
quadratic in the parts of a dotted key, so a small hostile file can exhaust the
stack, the clock or the memory. This scan reads the text once, skipping strings
and comments exactly as TOML does, and refuses a file past any bound before it
reaches the parser. It also records where each string starts, so problems in a
schedule can name their lines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from racesim.errors import InputError

MAX_DEPTH = 16
"""Arrays and inline tables nested in each other (a schedule needs 1, an actor 2)."""
MAX_KEY_PARTS = 8
"""Parts of one dotted key or table header (``[actors]`` is 1, ``a.b.c = 1`` is 3)."""
MAX_ITEMS = 50_000
"""Keys, strings, arrays, tables and list items in the whole file (a 10,000-entry
schedule is 20,000: each string and its comma)."""
MAX_DIGITS = 30
"""Digits in one bare number (2**63 has 19)."""

_LONG_NUMBER = f"[0-9](?:_?[0-9]){{{MAX_DIGITS},}}"
"""More than MAX_DIGITS digits in a row, ``_`` allowed between them (``1_000`` is 4)."""
_IN_KEY = re.compile(r"[\"'#\[\]{}=,.]|\n(?:\s|#[^\n]*)*|" + _LONG_NUMBER)
_IN_VALUE = re.compile(r"[\"'#\[\]{}=,]|\n(?:\s|#[^\n]*)*|" + _LONG_NUMBER)
_BASIC = re.compile(r'[^"\\\n]*(?:\\.[^"\\\n]*)*"')
_MULTI_BASIC = re.compile(r'[^"\\]*(?:(?:\\.|"(?!""))[^"\\]*)*""""{0,2}', re.DOTALL)
_LITERAL = re.compile(r"[^'\n]*'")
_MULTI_LITERAL = re.compile(r"[^']*(?:'(?!'')[^']*)*''''{0,2}")


@dataclass
class Shape:
    """Where the strings of a file start: ``(offset, line)`` of each, in order."""

    strings: list[tuple[int, int]] = field(default_factory=list)


def scan(text: str, path: str, what: str = "a scenario", needs: int = 2) -> Shape:
    """Check the bounds in one pass; raise InputError naming the line of the first breach.

    ``what`` names the kind of file in messages, and ``needs`` the nesting it uses."""
    shape = Shape()
    stack: list[str] = []  # "a" array, "i" inline table
    line, pos, items = 1, 0, 0
    in_key, parts, header = True, 1, False
    end = len(text)
    while pos < end:
        m = (_IN_KEY if in_key else _IN_VALUE).search(text, pos)
        if m is None:
            break
        ch, pos = m.group(), m.end()
        if ch[0] == "\n":
            line += ch.count("\n")
            if not stack:
                in_key, parts, header = True, 1, False
        elif len(ch) > 1:
            if not in_key:
                raise InputError(
                    f"{path}:{line}: a number of {len(ch) - ch.count('_')} digits; numbers in {what}"
                    " have at most 19 (seed < 2**63)"
                )
        elif ch == "#":
            nl = text.find("\n", pos)
            pos = end if nl < 0 else nl
        elif ch == '"' or ch == "'":
            items += 1
            shape.strings.append((m.start(), line))
            multi = text.startswith(ch * 2, pos)
            if multi:
                pattern = _MULTI_BASIC if ch == '"' else _MULTI_LITERAL
                pos += 2
            else:
                pattern = _BASIC if ch == '"' else _LITERAL
            close = pattern.match(text, pos)
            if close is None:
                break  # unterminated: the parser reports it
            if multi:
                line += text.count("\n", pos, close.end())
            pos = close.end()
        elif ch == "." and in_key:
            parts += 1
            if parts > MAX_KEY_PARTS:
                raise InputError(
                    f"{path}:{line}: a key of more than {MAX_KEY_PARTS} dotted parts;"
                    " write tables and keys as docs/scenario-files.md shows"
                )
        elif ch == "=":
            items += 1
            in_key = False
        elif ch == ",":
            items += 1
            if stack and stack[-1] == "i":
                in_key, parts = True, 1
        elif ch == "[" or ch == "{":
            if in_key and not stack and ch == "[":
                items += not header
                header = True  # a table header: its key is counted above
                continue
            items += 1
            stack.append("a" if ch == "[" else "i")
            in_key, parts = ch == "{", 1
            if len(stack) > MAX_DEPTH:
                raise InputError(
                    f"{path}:{line}: arrays and tables nested more than {MAX_DEPTH} deep;"
                    f" {what} needs at most {needs}"
                )
        elif ch == "]" or ch == "}":
            if stack:
                stack.pop()
            elif not header:
                break  # a stray closer: the parser reports it
            in_key = False
        if items > MAX_ITEMS:
            raise InputError(
                f"{path}:{line}: more than {MAX_ITEMS} keys and list items;"
                f" split {what} into smaller files"
            )
    return shape
