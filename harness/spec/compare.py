"""Compare a spec's output with an expected ``.out`` file, as a unified diff.

Example::

    >>> print("".join(diff(b"a\\nb\\n", b"a\\nc\\n", "expected.out", "racesim")), end="")
    --- expected.out
    +++ racesim
    @@ -1,2 +1,2 @@
     a
    -b
    +c
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator

__all__ = ["diff"]


def _lines(data: bytes) -> list[str]:
    return data.decode("utf-8", "surrogateescape").splitlines(keepends=True)


def diff(expected: bytes, got: bytes, expected_name: str, got_name: str) -> Iterator[str]:
    """Unified diff lines (each ending in a newline) from ``expected`` to ``got``; none if equal."""
    if expected == got:
        return
    for line in difflib.unified_diff(_lines(expected), _lines(got), expected_name, got_name, n=3):
        if line.endswith("\n"):
            yield line
        else:
            yield line + "\n\\ No newline at end of file\n"
