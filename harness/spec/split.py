"""A spec session's autocommit statement run as ``BEGIN``, the statement, ``COMMIT``.

An autocommit statement takes its snapshot, does its work and commits as one step
of a schedule, so two sessions' statements never overlap between a statement's
execution and its commit. The server allows that overlap: two ``INSERT INTO t
SELECT ... WHERE NOT EXISTS (SELECT 1 FROM t WHERE k = ...)`` both see no row and
both insert; an ``UPDATE ... WHERE id = (SELECT id ... LIMIT 1)`` picks a row
another session is about to change. A spec's system (``spec:FILE.spec``) therefore
runs each data-changing statement a session sends outside a transaction block as
three steps: ``NAME/begin`` (``BEGIN``), ``NAME`` (the statement) and
``NAME/commit`` (``COMMIT``; after an error it ends the failed transaction), so a
schedule can put other sessions' steps in between. ``racesim run FILE.spec``, which
prints what isolationtester prints, runs every step as written.

Only single ``INSERT``, ``UPDATE``, ``DELETE`` and ``MERGE`` statements (or a ``WITH``
query holding one; racesim.sql_tree.changes_data) are split
(nothing that cannot run in a transaction block), and only while the session is
not inside one it opened itself (``BEGIN`` / ``START TRANSACTION`` in its setup or
an earlier step, until ``COMMIT``, ``END``, ``ABORT``, ``ROLLBACK`` or ``PREPARE
TRANSACTION``).
"""

from __future__ import annotations

import re

from racesim.sql_tree import changes_data as splittable

__all__ = ["BEGIN", "COMMIT", "after", "splittable"]

BEGIN = "/begin"
COMMIT = "/commit"
"""Suffixes of the two steps a split statement adds, after the step's name."""

_COMMENTS = re.compile(r"--[^\n]*|/\*.*?\*/", re.DOTALL)


def after(sql: str, inside: bool) -> bool:
    """Whether the session is inside a transaction block after ``sql`` (its statements
    in order), given whether it was before."""
    for part in _COMMENTS.sub(" ", sql).split(";"):
        words = [w.upper() for w in part.split()[:2]]
        if not words:
            continue
        if words[0] in ("BEGIN", "START"):
            inside = True
        elif (
            words[0] in ("COMMIT", "END", "ABORT")
            or (words[0] == "ROLLBACK" and words[1:2] != ["TO"])
            or words[:2] == ["PREPARE", "TRANSACTION"]
        ):
            inside = False
    return inside
