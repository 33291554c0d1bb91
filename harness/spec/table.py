"""Result tables exactly as libpq's ``PQprint`` prints them for isolationtester.

isolationtester calls ``PQprint`` with ``header``, ``align`` and ``fieldSep = "|"``:
columns are padded to their widest value in bytes, a column is right-aligned when
every non-empty value looks numeric (digits, ``.``, ``e``/``E``, space, ``-``, ending
in a digit, not starting with ``e``/``E``), empty and NULL values print as nothing,
and a footer ``(N rows)`` and a blank line follow. A result without columns prints
nothing at all.

Example::

    >>> render([b"id", b"note"], [[b"1", b"a"], [b"12", None]]).decode()
    'id|note\\n--+----\\n 1|a   \\n12|    \\n(2 rows)\\n\\n'
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["render"]

_NUMERIC = frozenset(b"0123456789.Ee -")
_DIGITS = frozenset(b"0123456789")


def _numeric(value: bytes) -> bool:
    for ch in value:
        if ch not in _NUMERIC:
            return False
    return value[0] not in b"Ee" and value[-1] in _DIGITS


def render(names: Sequence[bytes], rows: Sequence[Sequence[bytes | None]]) -> bytes:
    """The bytes PQprint writes for a result with column ``names`` and ``rows``."""
    if not names:
        return b""
    width = [len(n) for n in names]
    numeric = [True] * len(names)
    for row in rows:
        for j, value in enumerate(row):
            if not value:
                continue
            if numeric[j] and not _numeric(value):
                numeric[j] = False
            width[j] = max(width[j], len(value))

    def cell(j: int, value: bytes) -> bytes:
        return value.rjust(width[j]) if numeric[j] else value.ljust(width[j])

    out = [
        b"|".join(cell(j, n) for j, n in enumerate(names)),
        b"+".join(b"-" * w for w in width),
    ]
    out.extend(b"|".join(cell(j, v or b"") for j, v in enumerate(row)) for row in rows)
    count = len(rows)
    out.append(b"(%d row%s)" % (count, b"" if count == 1 else b"s"))
    return b"\n".join(out) + b"\n\n"
