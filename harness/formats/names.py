"""Names read from users' files, made safe where racesim writes them (the functions
live in :mod:`racesim.files`; they are named here too).

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

from racesim.files import MAX_PART, control_character, escaped, file_part

__all__ = ["MAX_PART", "control_character", "escaped", "file_part"]
