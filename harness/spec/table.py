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

from collections.abc import Callable, Iterator, Sequence

__all__ = ["CHUNK", "render", "write"]

CHUNK = 1 << 16
"""Bytes of table lines written at a time."""

_NUMERIC = frozenset(b"0123456789.Ee -")
_DIGITS = frozenset(b"0123456789")


def _numeric(value: bytes) -> bool:
    for ch in value:
        if ch not in _NUMERIC:
            return False
    return value[0] not in b"Ee" and value[-1] in _DIGITS


def render(names: Sequence[bytes], rows: Sequence[Sequence[bytes | None]]) -> bytes:
    """The bytes PQprint writes for a result with column ``names`` and ``rows``."""
    out: list[bytes] = []
    write(names, lambda: iter(rows), out.append)
    return b"".join(out)


def write(
    names: Sequence[bytes],
    rows: Callable[[], Iterator[Sequence[bytes | None]]],
    out: Callable[[bytes], object],
    chunk: int = CHUNK,
) -> None:
    """What :func:`render` returns, handed to ``out`` in pieces of about ``chunk`` bytes.

    ``rows()`` is called twice (widths first, then the lines), so a result of any
    size is printed without a second copy of it in memory."""
    if not names:
        return
    width = [len(n) for n in names]
    numeric = [True] * len(names)
    count = 0
    for row in rows():
        count += 1
        for j, value in enumerate(row):
            if not value:
                continue
            if numeric[j] and not _numeric(value):
                numeric[j] = False
            width[j] = max(width[j], len(value))

    def cell(j: int, value: bytes) -> bytes:
        return value.rjust(width[j]) if numeric[j] else value.ljust(width[j])

    lines = [
        b"|".join(cell(j, n) for j, n in enumerate(names)),
        b"+".join(b"-" * w for w in width),
    ]
    size = 0
    for row in rows():
        line = b"|".join(cell(j, v or b"") for j, v in enumerate(row))
        lines.append(line)
        size += len(line) + 1
        if size >= chunk:
            out(b"\n".join(lines) + b"\n")
            lines, size = [], 0
    lines.append(b"(%d row%s)" % (count, b"" if count == 1 else b"s"))
    out(b"\n".join(lines) + b"\n\n")
