"""What SQL reads and writes, from PostgreSQL's own parser (``pglast``, libpg_query).

A footprint names resources; two steps of different sessions may be run in either
order with the same results when neither writes what the other reads or writes
(``conflicts``). Where the parser cannot say what a statement touches, the answer
is ``None``: the statement conflicts with everything.

Resources:

* a relation (table, sequence, view) by its name as PostgreSQL folds it, the
  schema dropped: ``public.t``, ``T`` and ``t`` are the resource ``t`` (two tables of
  one name in two schemas merely conflict more than they need to);
* ``advisory:K`` for the advisory lock of literal key ``K`` (``advisory:A,B`` for the
  two-key form); a lock on any key also reads ``advisory:*``, which a lock or unlock
  whose key is not a literal writes.

``SELECT ... FOR UPDATE/SHARE`` and ``LOCK`` write the tables they lock;
``nextval``/``setval`` write their sequence; ``INSERT/UPDATE/DELETE/MERGE``
(also inside a ``WITH``) write their target and read the rest; simple DDL on a table
(create, alter, drop, truncate, index, vacuum, analyze) writes it. Calls of functions not known to
be pure, ``DO``, ``CALL``, ``EXECUTE`` and statements of other kinds give ``None``.

Without a ``Schema`` every relation is taken to be a plain table: nothing a
statement does to it touches another relation (no triggers, rules, foreign keys,
views over other tables, defaults drawing on a shared sequence). ``schema_of``
reads that from a database's setup SQL; with it, names outside the setup's plain
tables and sequences give ``None``.

Transactions: ``of_sql`` judges a statement as if it ran under READ COMMITTED,
where every statement takes its own snapshot; it answers ``None`` for the end of
a transaction (``COMMIT``, ``ROLLBACK``, ``ROLLBACK TO``, ``PREPARE TRANSACTION``)
and for choosing a stricter isolation level, which need to know what came
before. ``Session`` follows one session's statements in order and answers those:
a transaction's end writes everything the transaction touched, and the statement
that takes a REPEATABLE READ or SERIALIZABLE snapshot reads every relation.

>>> of_sql("UPDATE accounts SET n = n + 1 WHERE id = 1")
Footprint(reads=frozenset(), writes=frozenset({'accounts'}))
>>> of_sql("SELECT my_function()") is None
True
"""

from __future__ import annotations

from pglast import ast, enums

from racesim.sql_access import (
    ANY_ADVISORY,
    SIMPLE_ALTER,
    Schema,
    draws,
    functions_ok,
    statement,
    union,
)
from racesim.sql_tree import (
    is_control,
    isolation,
    items,
    parse,
    relname,
    set_level,
    sets_isolation,
    strings,
    walk,
)
from racesim.system import Footprint

__all__ = ["ANY_ADVISORY", "Schema", "Session", "conflicts", "of_sql", "schema_of"]


def conflicts(a: Footprint | None, b: Footprint | None) -> bool:
    """True when the order of two steps of different sessions may matter."""
    if a is None or b is None:
        return True
    return bool(a.writes & (b.reads | b.writes) or b.writes & a.reads)


def of_sql(sql: str, schema: Schema | None = None) -> Footprint | None:
    """What ``sql`` (one or more statements) reads and writes, judged under READ
    COMMITTED with no knowledge of the transaction around it; ``None`` when that
    cannot be said."""
    statements = parse(sql)
    if statements is None:
        return None
    found: list[Footprint | None] = []
    for stmt in statements:
        if isinstance(stmt, ast.TransactionStmt):
            kind = stmt.kind
            if kind in (
                enums.TransactionStmtKind.TRANS_STMT_BEGIN,
                enums.TransactionStmtKind.TRANS_STMT_START,
            ):
                found.append(
                    Footprint() if isolation(stmt.options) in (None, "read committed") else None
                )
            elif kind in (
                enums.TransactionStmtKind.TRANS_STMT_SAVEPOINT,
                enums.TransactionStmtKind.TRANS_STMT_RELEASE,
            ):
                found.append(Footprint())
            else:
                found.append(None)
        elif isinstance(stmt, ast.VariableSetStmt) and sets_isolation(stmt):
            found.append(None)
        else:
            found.append(statement(stmt, schema))
    return union(found)


class Session:
    """Footprints of one session's SQL, given in the order it runs.

    ``Session().next(sql)`` answers as ``of_sql`` does, and also for transaction
    control: the end of a transaction (or ``ROLLBACK TO``) writes everything the
    transaction read or wrote, and the first statement of a REPEATABLE READ or
    SERIALIZABLE transaction, which takes its snapshot, reads every relation of
    ``schema`` (``None`` without one). After a statement with no footprint, the
    transaction's end has none either.

    >>> s = Session()
    >>> _ = s.next("BEGIN"); _ = s.next("UPDATE t SET n = 1")
    >>> s.next("COMMIT")
    Footprint(reads=frozenset(), writes=frozenset({'t'}))
    """

    def __init__(self, schema: Schema | None = None) -> None:
        self.schema = schema
        self.default = "read committed"
        self.isolation: str | None = None
        """The open transaction's isolation level; None outside a transaction block."""
        self.snapshot = False
        self.reads: set[str] = set()
        self.writes: set[str] = set()
        self.unknown = False

    def next(self, sql: str) -> Footprint | None:
        statements = parse(sql)
        if statements is None:
            self.unknown = True
            return None
        found = [self._one(stmt) for stmt in statements]
        return union(found)

    # -- one statement ----------------------------------------------------------
    def _one(self, stmt: ast.Node) -> Footprint | None:
        if isinstance(stmt, ast.TransactionStmt):
            return self._control(stmt)
        if isinstance(stmt, ast.VariableSetStmt) and sets_isolation(stmt):
            return self._set_isolation(stmt)
        fp = statement(stmt, self.schema)
        if fp is None:
            self.unknown = True
            return None
        if is_control(stmt):
            return fp
        in_block = self.isolation is not None
        level = self.isolation if self.isolation is not None else self.default
        # Outside a block a statement is a transaction of its own and takes its snapshot.
        if level != "read committed" and not (in_block and self.snapshot):
            self.snapshot = in_block
            if self.schema is None:
                self.unknown = True
                return None
            fp = Footprint(reads=fp.reads | self.schema.relations, writes=fp.writes)
        if self.isolation is not None:
            self.reads |= fp.reads
            self.writes |= fp.writes
        return fp

    def _control(self, stmt: ast.TransactionStmt) -> Footprint | None:
        kinds = enums.TransactionStmtKind
        kind = stmt.kind
        if kind in (kinds.TRANS_STMT_BEGIN, kinds.TRANS_STMT_START):
            if self.isolation is None:
                self.isolation = isolation(stmt.options) or self.default
                self.snapshot = False
            return Footprint()
        if kind in (kinds.TRANS_STMT_SAVEPOINT, kinds.TRANS_STMT_RELEASE):
            return Footprint()
        if kind in (kinds.TRANS_STMT_COMMIT_PREPARED, kinds.TRANS_STMT_ROLLBACK_PREPARED):
            return None  # what the prepared transaction touched is another session's
        if self.isolation is None:
            return Footprint()  # no transaction is open: a warning, nothing more
        ended = None if self.unknown else Footprint(writes=frozenset(self.reads | self.writes))
        if kind == kinds.TRANS_STMT_ROLLBACK_TO:
            return ended
        if stmt.chain:
            self.snapshot = False
        else:
            self.isolation = None
        self.reads.clear()
        self.writes.clear()
        self.unknown = False
        return ended

    def _set_isolation(self, stmt: ast.VariableSetStmt) -> Footprint:
        level = set_level(stmt)
        if stmt.kind == enums.VariableSetKind.VAR_RESET_ALL:
            self.default = level
        elif stmt.name == "default_transaction_isolation":
            if not stmt.is_local:  # SET LOCAL of it changes no transaction at all
                self.default = level
        elif stmt.name == "SESSION CHARACTERISTICS":
            self.default = level
        elif self.isolation is not None and not self.snapshot:
            self.isolation = level
        return Footprint()


def schema_of(setup: str) -> Schema | None:
    """The plain tables and sequences ``setup`` creates, or ``None`` when its SQL
    lets a statement on one relation touch another (foreign keys, triggers, rules,
    policies, inheritance, partitions, extensions) or holds anything else this
    module cannot read."""
    statements = parse(setup)
    if statements is None:
        return None
    tables: set[str] = set()
    sequences: set[str] = set()
    implied: dict[str, frozenset[str]] = {}
    functions: set[str] = set()
    for stmt in statements:
        if any(
            isinstance(n, ast.Constraint) and n.contype == enums.ConstrType.CONSTR_FOREIGN
            for n in walk(stmt)
        ):
            return None
        if isinstance(stmt, ast.CreateStmt):
            if stmt.inhRelations or stmt.partspec or stmt.partbound or stmt.ofTypename:
                return None
            name = relname(stmt.relation)
            drawn = draws(stmt)
            if drawn is None:
                return None
            tables.add(name)
            implied[name] = drawn
        elif isinstance(stmt, ast.CreateSeqStmt):
            sequences.add(relname(stmt.sequence))
        elif isinstance(stmt, ast.ViewStmt):
            tables.discard(relname(stmt.view))
        elif isinstance(stmt, ast.CreateFunctionStmt):
            functions.add(strings(stmt.funcname)[-1])
        elif isinstance(stmt, ast.DropStmt):
            continue  # dropping leaves fewer relations; names seen before stay named
        elif isinstance(stmt, ast.AlterTableStmt):
            if (
                not all(
                    isinstance(c, ast.AlterTableCmd) and c.subtype in SIMPLE_ALTER
                    for c in items(stmt.cmds)
                )
                or draws(stmt) != frozenset()
            ):
                return None
        elif isinstance(
            stmt,
            ast.IndexStmt
            | ast.CreateEnumStmt
            | ast.CompositeTypeStmt
            | ast.CreateSchemaStmt
            | ast.CommentStmt
            | ast.GrantStmt
            | ast.GrantRoleStmt
            | ast.CreateRoleStmt
            | ast.AlterSeqStmt
            | ast.TruncateStmt
            | ast.TransactionStmt
            | ast.VariableSetStmt
            | ast.VariableShowStmt
            | ast.VacuumStmt,
        ):
            if functions_ok(stmt, frozenset(functions)) is False:
                return None
        elif statement(stmt, None) is None:
            return None
    return Schema(frozenset(tables), frozenset(sequences), implied, frozenset(functions))
