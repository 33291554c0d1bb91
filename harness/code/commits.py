"""An autocommit statement that changes data, raced as two steps: itself, then its commit.

On an autocommit connection PostgreSQL runs each statement as a transaction of its
own, and between the statement's work and its commit another session's statement
may run: two ``INSERT INTO t SELECT ... WHERE NOT EXISTS (SELECT 1 FROM t WHERE k =
...)`` both see no row and both insert; an ``UPDATE ... WHERE id = (SELECT id ...
LIMIT 1)`` picks a row another session has changed but not committed, waits for its
lock, and its re-check still matches. A step that runs the statement to its commit
never leaves that window open, so racesim runs such a statement as two steps:

- ``sN``: ``BEGIN; <the statement>`` (a plain ``BEGIN``, so the transaction takes the
  session's default isolation level and access mode, as the statement alone would);
- ``sN+1``: ``COMMIT``, the same line of the user's code (after an error it ends the
  failed transaction: its result is then ``ROLLBACK``).

The function sees what autocommit gives it: ``execute`` returns once the commit is
done, with the statement's rows and status; it raises the statement's error, or the
commit's (a deferred constraint), after the commit step. Each such statement adds one
step to a run, no more. For the search's reduction (racesim.code.reduce) the first step
is a statement inside a transaction and the commit step writes everything the
statement read or wrote, so it is ordered against every step touching those tables.

Only a single ``INSERT``, ``UPDATE``, ``DELETE`` or ``MERGE`` (or a ``WITH`` holding
one) sent by ``execute`` outside a transaction block and outside a pipeline is split:
never a statement that cannot run in a transaction block (``VACUUM``, ``CREATE INDEX
CONCURRENTLY``), a ``CALL``, a ``COPY``, an ``executemany``, a ``stream()``, a
``SELECT`` (a function it calls may write: racesim cannot tell), or a string of
several statements. ``racesim.code.system(..., commit_steps=False)`` runs every
statement to its commit in one step (the window is then never tried), and a replay
of a run saved with a statement as one step runs it as saved.
"""

from __future__ import annotations

from typing import Any

from psycopg import pq

from racesim.sql_tree import changes_data as changes_data

__all__ = ["COMMIT", "apart", "changes_data"]

COMMIT = "COMMIT"
"""The SQL of a split statement's second step."""


def apart(conn: Any, gen: Any, text: str) -> bool:
    """Whether the statement ``conn.wait(gen)`` is about to send (``text``) runs as
    itself and then its commit, as two steps. A replay of a run saved with the
    statement as one step (before racesim split them) runs it as saved."""
    return (
        getattr(conn, "_racesim_commit_steps", False)
        and conn.autocommit
        and conn.pgconn.transaction_status == pq.TransactionStatus.IDLE
        and conn._pipeline is None
        and getattr(getattr(gen, "gi_code", None), "co_name", "") == "_execute_gen"
        and changes_data(text)
        and not _saved_whole(conn, text)
    )


def _saved_whole(conn: Any, text: str) -> bool:
    saved: tuple[str, ...] | None = getattr(conn, "_racesim_saved", None)
    at = conn._racesim_run.count  # the statements sent before this one
    return saved is not None and at < len(saved) and saved[at] == text
