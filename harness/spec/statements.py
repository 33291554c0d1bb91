"""How many SQL statements a text holds, read as PostgreSQL's lexer reads it.

A ``;`` ends a statement unless it sits in a string (``'...'``, ``E'...'`` with
backslash escapes), a quoted identifier (``"..."``), a dollar-quoted string
(``$$...$$``, ``$tag$...$tag$``), a ``--`` comment or a ``/* ... */`` comment (which
nest). Statements that hold nothing but space and comments do not count.

Example::

    >>> count("SELECT ';' AS a; ")
    1
    >>> count("SELECT 1 WHERE false; DROP TABLE t")
    2
"""

from __future__ import annotations

import re

__all__ = ["count"]

_DOLLAR = re.compile(r"\$([A-Za-z_\x80-\U0010ffff][A-Za-z0-9_\x80-\U0010ffff]*)?\$")
_IDENT_CHAR = re.compile(r"[A-Za-z0-9_$\x80-\U0010ffff]")


def count(sql: str) -> int:
    """The number of non-empty statements in ``sql`` (an unterminated string or
    comment runs to the end, as the server would then refuse it anyway)."""
    found, has_text, i, n = 0, False, 0, len(sql)
    while i < n:
        c = sql[i]
        if c == ";":
            found += has_text
            has_text = False
            i += 1
        elif c.isspace():
            i += 1
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end < 0 else end + 1
        elif sql.startswith("/*", i):
            i = _comment_end(sql, i)
        elif c == "'":
            escapes = i > 0 and sql[i - 1] in "eE" and not _in_word(sql, i - 1)
            i = _quoted_end(sql, i, "'", escapes)
            has_text = True
        elif c == '"':
            i = _quoted_end(sql, i, '"', False)
            has_text = True
        elif c == "$" and not (i > 0 and _IDENT_CHAR.match(sql[i - 1])):
            m = _DOLLAR.match(sql, i)
            if m is None:
                i += 1
            else:
                end = sql.find(m.group(), m.end())
                i = n if end < 0 else end + len(m.group())
            has_text = True
        else:
            has_text = True
            i += 1
    return found + has_text


def _in_word(sql: str, i: int) -> bool:
    """Whether ``sql[i]`` continues an identifier (so an ``e`` before ``'`` is not ``E'``)."""
    return i > 0 and _IDENT_CHAR.match(sql[i - 1]) is not None


def _quoted_end(sql: str, i: int, quote: str, escapes: bool) -> int:
    j, n = i + 1, len(sql)
    while j < n:
        c = sql[j]
        if escapes and c == "\\":
            j += 2
        elif c == quote:
            if sql.startswith(quote * 2, j):
                j += 2
            else:
                return j + 1
        else:
            j += 1
    return n


def _comment_end(sql: str, i: int) -> int:
    depth, j, n = 0, i, len(sql)
    while j < n:
        if sql.startswith("/*", j):
            depth += 1
            j += 2
        elif sql.startswith("*/", j):
            depth -= 1
            j += 2
            if depth == 0:
                return j
        else:
            j += 1
    return n
