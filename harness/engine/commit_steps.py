"""A program's autocommit statement that changes data, raced as two steps: the
statement in a transaction of its own, then that transaction's ``COMMIT``.

On an autocommit session PostgreSQL runs each statement as a transaction of its
own, and between the statement's work and its commit another session's statement
may run: two ``INSERT INTO t SELECT ... WHERE NOT EXISTS (SELECT 1 FROM t ...)``
both see no row and both insert. A step that runs the statement to its commit
never leaves that window open. With ``Options.split_commits`` (on by default;
``--no-split-commits`` or ``RACESIM_SPLIT_COMMITS=0`` turn it off, and a scenario
file's ``split_commits`` decides for its plan) the engine runs such a ``sql`` call
as two steps, as ``spec:`` systems run a spec's statements:

- ``NAME``: ``BEGIN``, then the statement (a plain ``BEGIN``: the session's default
  isolation level, as the statement alone would have);
- ``NAME/commit``: ``COMMIT`` (after an error it ends the failed transaction, and
  its result is then ``ROLLBACK``).

The program sees what autocommit gives it, once the commit step has ended: the
statement's result, or its error, or the commit's (a deferred constraint, a
serialization failure). Only a single ``INSERT``, ``UPDATE``, ``DELETE`` or
``MERGE`` (or a ``WITH`` query holding one) sent outside a transaction block is
split; a ``SELECT`` is not (a function it calls may write: the engine cannot tell).
Each such statement adds one step to a run. For the search's reduction the commit
step writes what its statement read or wrote (``commit_footprint``).
"""

from __future__ import annotations

from racesim.formats.commits import COMMIT as COMMIT
from racesim.sql_tree import changes_data as changes_data
from racesim.system import Call, Footprint, System

__all__ = ["COMMIT", "changes_data", "commit_footprint", "commit_step"]


def commit_step(call: Call) -> Call:
    """The step that commits split statement ``call`` (``NAME/commit``)."""
    return Call(call.name + COMMIT, kind="sql", sql="COMMIT")


def commit_footprint(system: System, call: str, made: Call | None) -> Footprint | None:
    """What the commit step ``call`` (``made``) of a split statement touches, for the
    search's reduction: it writes everything its statement reads or writes, by the
    system's footprint of the statement's call. Its ``COMMIT`` makes the statement's
    writes visible and releases its row locks, and a serializable transaction's
    commit may fail on what the statement read, so it is ordered against every step
    touching those resources. None (everything) when the statement's footprint is
    unknown, or when ``call`` is not a step the engine added (a program's own call
    of that name, such as a ``spec:`` session's ``NAME/commit``, which may end a
    longer transaction)."""
    if made is None or made != Call(call, kind="sql", sql="COMMIT") or not call.endswith(COMMIT):
        return None
    if any(call in program.calls for program in system.programs.values()):
        return None
    statement = system.footprint(call.removesuffix(COMMIT))
    if statement is None:
        return None
    return Footprint(writes=statement.reads | statement.writes)
