"""Names read from users' files, made safe where racesim writes them.

A name (an invariant's, a store's, a file's) may become part of a file name or be
written into a generated ``.spec``. In a file name it is reduced to a safe
alphabet, so it can never name a folder or climb out of one; in a ``.spec`` it goes
into a comment with its control characters escaped, so it can never start a line
of grammar.

Example::

    >>> file_part("a/../../../x")
    'a_.._.._.._x'
    >>> escaped("x\\nsetup { SELECT 1; }")
    'x\\\\x0asetup { SELECT 1; }'
"""

from __future__ import annotations

import hashlib
import re

__all__ = ["MAX_PART", "control_character", "escaped", "file_part"]

MAX_PART = 80
"""Characters of one name in a file name; a longer name is cut and keeps a short hash."""

_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def file_part(name: str) -> str:
    """``name`` as part of a file name: ASCII letters, digits, ``.``, ``_``, ``+`` and
    ``-`` kept, anything else (``/`` included) written as ``_``, no leading ``.``, at most
    :data:`MAX_PART` characters."""
    safe = _UNSAFE.sub("_", name) or "_"
    if safe.startswith("."):
        safe = "_" + safe[1:]
    if len(safe) > MAX_PART:
        digest = hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:12]
        safe = f"{safe[: MAX_PART - 13]}-{digest}"
    return safe


def control_character(text: str) -> str | None:
    """The first control (or line-separating, or bidirectional-override) character
    of ``text``, escaped (``\\x0a``); None when it has none."""
    m = _CONTROL.search(text)
    return None if m is None else _escape(m.group())


def escaped(text: str) -> str:
    """``text`` with every control character escaped, for a ``#`` comment line (which
    then ends where racesim ends it) or a message (a file name in it stays one line)."""
    return _CONTROL.sub(lambda m: _escape(m.group()), text)


def _escape(c: str) -> str:
    return f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}"
