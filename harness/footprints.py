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

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from pglast import ast, enums
from pglast.parser import ParseError, parse_sql

from racesim.system import Footprint

__all__ = ["ANY_ADVISORY", "Schema", "Session", "conflicts", "of_sql", "schema_of"]

ANY_ADVISORY = "advisory:*"

_PURE_WORDS = """
    count sum avg min max bool_and bool_or every array_agg string_agg json_agg jsonb_agg
    json_object_agg jsonb_object_agg row_number rank dense_rank percent_rank cume_dist ntile
    lag lead first_value last_value nth_value
    abs ceil ceiling floor round trunc mod power sqrt exp ln log sign div greatest least
    length char_length character_length octet_length bit_length lower upper initcap trim btrim
    ltrim rtrim substr substring replace translate concat concat_ws format left right lpad rpad
    position strpos split_part repeat reverse regexp_replace regexp_match regexp_matches
    regexp_split_to_array regexp_split_to_table starts_with md5 sha256 encode decode chr ascii
    to_char to_number to_date to_timestamp now clock_timestamp statement_timestamp
    transaction_timestamp timeofday date_trunc date_part extract make_interval make_date
    make_timestamp make_timestamptz age isfinite justify_days justify_hours justify_interval
    array_length array_lower array_upper array_ndims array_dims cardinality unnest
    array_position array_positions array_remove array_replace array_append array_prepend
    array_cat array_to_string string_to_array generate_series generate_subscripts
    json_build_object jsonb_build_object json_build_array jsonb_build_array to_json to_jsonb
    jsonb_set jsonb_insert jsonb_extract_path jsonb_extract_path_text json_extract_path
    json_extract_path_text jsonb_array_length json_array_length jsonb_typeof json_typeof
    jsonb_array_elements json_array_elements jsonb_each json_each jsonb_object_keys
    jsonb_pretty jsonb_strip_nulls row_to_json num_nonnulls num_nulls
    pg_sleep pg_sleep_for pg_backend_pid currval lastval
"""
PURE = frozenset(_PURE_WORDS.split())
"""Built-in functions whose result depends only on their arguments and the session
(or on time): calling them touches nothing another session can see."""

_ADVISORY = re.compile(r"pg_(try_)?advisory_(xact_)?(lock|unlock)(_shared)?|pg_advisory_unlock_all")
_ISOLATION_NAMES = {"transaction_isolation", "default_transaction_isolation"}
_SIMPLE_ALTER = frozenset(
    {
        enums.AlterTableType.AT_AddColumn,
        enums.AlterTableType.AT_ColumnDefault,
        enums.AlterTableType.AT_DropNotNull,
        enums.AlterTableType.AT_SetNotNull,
        enums.AlterTableType.AT_DropColumn,
        enums.AlterTableType.AT_AddIndex,
        enums.AlterTableType.AT_AddConstraint,
        enums.AlterTableType.AT_DropConstraint,
        enums.AlterTableType.AT_AlterColumnType,
        enums.AlterTableType.AT_SetStatistics,
        enums.AlterTableType.AT_SetStorage,
        enums.AlterTableType.AT_ChangeOwner,
        enums.AlterTableType.AT_SetRelOptions,
        enums.AlterTableType.AT_ResetRelOptions,
        enums.AlterTableType.AT_ReplicaIdentity,
        enums.AlterTableType.AT_AddIdentity,
        enums.AlterTableType.AT_SetIdentity,
        enums.AlterTableType.AT_DropIdentity,
    }
)
_DROPPABLE = frozenset(
    {enums.ObjectType.OBJECT_TABLE, enums.ObjectType.OBJECT_SEQUENCE, enums.ObjectType.OBJECT_INDEX}
)


@dataclass(frozen=True)
class Schema:
    """What a database's setup makes safe to say: its plain ``tables``, its
    ``sequences``, the resources a write to a table also writes (``implied``: the
    sequences its defaults draw on) and the ``functions`` it defines."""

    tables: frozenset[str] = frozenset()
    sequences: frozenset[str] = frozenset()
    implied: Mapping[str, frozenset[str]] = field(default_factory=dict)
    functions: frozenset[str] = frozenset()

    @property
    def relations(self) -> frozenset[str]:
        return self.tables | self.sequences


def conflicts(a: Footprint | None, b: Footprint | None) -> bool:
    """True when the order of two steps of different sessions may matter."""
    if a is None or b is None:
        return True
    return bool(a.writes & (b.reads | b.writes) or b.writes & a.reads)


def of_sql(sql: str, schema: Schema | None = None) -> Footprint | None:
    """What ``sql`` (one or more statements) reads and writes, judged under READ
    COMMITTED with no knowledge of the transaction around it; ``None`` when that
    cannot be said."""
    statements = _parse(sql)
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
                    Footprint() if _isolation(stmt.options) in (None, "read committed") else None
                )
            elif kind in (
                enums.TransactionStmtKind.TRANS_STMT_SAVEPOINT,
                enums.TransactionStmtKind.TRANS_STMT_RELEASE,
            ):
                found.append(Footprint())
            else:
                found.append(None)
        elif isinstance(stmt, ast.VariableSetStmt) and _sets_isolation(stmt):
            found.append(None)
        else:
            found.append(_statement(stmt, schema))
    return _union(found)


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
        statements = _parse(sql)
        if statements is None:
            self.unknown = True
            return None
        found = [self._one(stmt) for stmt in statements]
        return _union(found)

    # -- one statement ----------------------------------------------------------
    def _one(self, stmt: ast.Node) -> Footprint | None:
        if isinstance(stmt, ast.TransactionStmt):
            return self._control(stmt)
        if isinstance(stmt, ast.VariableSetStmt) and _sets_isolation(stmt):
            return self._set_isolation(stmt)
        fp = _statement(stmt, self.schema)
        if fp is None:
            self.unknown = True
            return None
        if _is_control(stmt):
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
                self.isolation = _isolation(stmt.options) or self.default
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
        level = _set_level(stmt)
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
    statements = _parse(setup)
    if statements is None:
        return None
    tables: set[str] = set()
    sequences: set[str] = set()
    implied: dict[str, frozenset[str]] = {}
    functions: set[str] = set()
    for stmt in statements:
        if any(
            isinstance(n, ast.Constraint) and n.contype == enums.ConstrType.CONSTR_FOREIGN
            for n in _walk(stmt)
        ):
            return None
        if isinstance(stmt, ast.CreateStmt):
            if stmt.inhRelations or stmt.partspec or stmt.partbound or stmt.ofTypename:
                return None
            name = _relname(stmt.relation)
            draws = _draws(stmt)
            if draws is None:
                return None
            tables.add(name)
            implied[name] = draws
        elif isinstance(stmt, ast.CreateSeqStmt):
            sequences.add(_relname(stmt.sequence))
        elif isinstance(stmt, ast.ViewStmt):
            tables.discard(_relname(stmt.view))
        elif isinstance(stmt, ast.CreateFunctionStmt):
            functions.add(_strings(stmt.funcname)[-1])
        elif isinstance(stmt, ast.DropStmt):
            continue  # dropping leaves fewer relations; names seen before stay named
        elif isinstance(stmt, ast.AlterTableStmt):
            if (
                not all(
                    isinstance(c, ast.AlterTableCmd) and c.subtype in _SIMPLE_ALTER
                    for c in _items(stmt.cmds)
                )
                or _draws(stmt) != frozenset()
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
            if _functions_ok(stmt, frozenset(functions)) is False:
                return None
        elif _statement(stmt, None) is None:
            return None
    return Schema(frozenset(tables), frozenset(sequences), implied, frozenset(functions))


# -- machinery ------------------------------------------------------------------


def _parse(sql: str) -> tuple[ast.Node, ...] | None:
    try:
        raw = parse_sql(sql)
    except ParseError:
        return None
    out = tuple(r.stmt for r in raw if r.stmt is not None)
    return out


def _walk(node: object) -> Iterator[ast.Node]:
    """Every node under ``node`` (itself included), depth first."""
    stack: list[object] = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, ast.Node):
            yield item
            for slot in getattr(type(item), "__slots__", ()):
                value = getattr(item, slot, None)
                if isinstance(value, ast.Node | tuple | list):
                    stack.append(value)
        elif isinstance(item, tuple | list):
            stack.extend(item)


def _strings(items: object) -> list[str]:
    return [str(s.sval) for s in _items(items) if isinstance(s, ast.String)]


def _relname(rv: object) -> str:
    return str(rv.relname) if isinstance(rv, ast.RangeVar) else ""


def _items(value: object) -> tuple[object, ...]:
    return tuple(value) if isinstance(value, tuple | list) else ()


def _union(found: list[Footprint | None]) -> Footprint | None:
    if any(f is None for f in found):
        return None
    reads: set[str] = set()
    writes: set[str] = set()
    for f in found:
        assert f is not None
        reads |= f.reads
        writes |= f.writes
    return Footprint(reads=frozenset(reads - writes), writes=frozenset(writes))


def _isolation(options: object) -> str | None:
    for opt in _items(options):
        if isinstance(opt, ast.DefElem) and opt.defname == "transaction_isolation":
            return _level(opt.arg)
    return None


def _level(arg: object) -> str:
    if isinstance(arg, ast.A_Const) and isinstance(arg.val, ast.String):
        level = str(arg.val.sval).lower().replace("_", " ")
        return "read committed" if level == "read uncommitted" else level
    return "serializable"  # unreadable: assume the strictest


def _sets_isolation(stmt: ast.VariableSetStmt) -> bool:
    if stmt.name in _ISOLATION_NAMES or stmt.kind == enums.VariableSetKind.VAR_RESET_ALL:
        return True
    return (
        stmt.name in ("TRANSACTION", "SESSION CHARACTERISTICS")
        and _isolation(stmt.args) is not None
    )


def _set_level(stmt: ast.VariableSetStmt) -> str:
    if stmt.kind == enums.VariableSetKind.VAR_RESET_ALL:
        return "serializable"  # back to a default that is unknown here
    if stmt.kind != enums.VariableSetKind.VAR_SET_VALUE and stmt.name in _ISOLATION_NAMES:
        return "serializable"  # RESET or DEFAULT: the server's default is unknown here
    if stmt.name in _ISOLATION_NAMES:
        return _level((stmt.args or (None,))[0])
    return _isolation(stmt.args) or "serializable"


def _is_control(stmt: ast.Node) -> bool:
    return isinstance(
        stmt,
        ast.VariableSetStmt | ast.VariableShowStmt | ast.PrepareStmt | ast.DeallocateStmt,
    )


def _statement(stmt: ast.Node, schema: Schema | None) -> Footprint | None:
    """The footprint of one statement other than transaction control."""
    if _is_control(stmt):
        if isinstance(stmt, ast.PrepareStmt):
            return Footprint()  # preparing runs nothing; EXECUTE is not read
        return Footprint()
    if isinstance(stmt, ast.ExplainStmt | ast.DeclareCursorStmt):
        return _statement(stmt.query, schema) if stmt.query is not None else None
    if isinstance(
        stmt, ast.SelectStmt | ast.InsertStmt | ast.UpdateStmt | ast.DeleteStmt | ast.MergeStmt
    ):
        return _data(stmt, schema)
    if isinstance(stmt, ast.LockStmt):
        return _named([_relname(r) for r in _items(stmt.relations)], schema)
    return _ddl(stmt, schema)


def _named(names: list[str], schema: Schema | None) -> Footprint | None:
    if schema is not None and not set(names) <= schema.relations:
        return None
    writes = set(names)
    for name in names:
        writes |= schema.implied.get(name, frozenset()) if schema else set()
    return Footprint(writes=frozenset(writes))


def _ddl(stmt: ast.Node, schema: Schema | None) -> Footprint | None:
    if _functions_ok(stmt, schema.functions if schema else frozenset()) is False:
        return None
    if isinstance(stmt, ast.CreateStmt):
        if stmt.inhRelations or stmt.partspec or stmt.partbound or stmt.ofTypename:
            return None
        if _has_foreign_key(stmt) or _draws(stmt) != frozenset():
            return None
        return _named([_relname(stmt.relation)], schema)
    if isinstance(stmt, ast.AlterTableStmt):
        if stmt.objtype != enums.ObjectType.OBJECT_TABLE or _has_foreign_key(stmt):
            return None
        if not all(
            isinstance(c, ast.AlterTableCmd) and c.subtype in _SIMPLE_ALTER
            for c in _items(stmt.cmds)
        ):
            return None
        if _draws(stmt) != frozenset():
            return None
        return _named([_relname(stmt.relation)], schema)
    if isinstance(stmt, ast.IndexStmt):
        return _named([_relname(stmt.relation)], schema)
    if isinstance(stmt, ast.TruncateStmt):
        if stmt.behavior == enums.DropBehavior.DROP_CASCADE or stmt.restart_seqs:
            return None
        return _named([_relname(r) for r in _items(stmt.relations)], schema)
    if isinstance(stmt, ast.DropStmt):
        if stmt.behavior == enums.DropBehavior.DROP_CASCADE or stmt.removeType not in _DROPPABLE:
            return None
        if stmt.removeType == enums.ObjectType.OBJECT_INDEX:
            return None  # which table an index belongs to is not in the statement
        names = [(_strings(obj) or [""])[-1] for obj in _items(stmt.objects)]
        return _named(names, schema)
    if isinstance(stmt, ast.VacuumStmt):
        # VACUUM and ANALYZE change no row a query sees, but they lock what they name.
        rels = [
            _relname(v.relation) for v in _items(stmt.rels) if isinstance(v, ast.VacuumRelation)
        ]
        return _named(rels, schema) if rels else None
    if isinstance(stmt, ast.CreateSeqStmt):
        return _named([_relname(stmt.sequence)], schema)
    if isinstance(stmt, ast.AlterSeqStmt):
        return _named([_relname(stmt.sequence)], schema)
    return None


def _has_foreign_key(stmt: ast.Node) -> bool:
    return any(
        isinstance(n, ast.Constraint) and n.contype == enums.ConstrType.CONSTR_FOREIGN
        for n in _walk(stmt)
    )


def _draws(stmt: ast.Node) -> frozenset[str] | None:
    """The sequences a table definition's expressions draw on (``nextval('s')``),
    or None when they call anything else not known to be pure."""
    drawn: set[str] = set()
    for node in _walk(stmt):
        if not isinstance(node, ast.FuncCall):
            continue
        name = _function(node)
        if name in ("nextval", "setval"):
            seq = _sequence_arg(node)
            if seq is None:
                return None
            drawn.add(seq)
        elif name is None or name not in PURE:
            return None
    return frozenset(drawn)


def _functions_ok(stmt: ast.Node, own: frozenset[str]) -> bool:
    for node in _walk(stmt):
        if isinstance(node, ast.FuncCall):
            name = _function(node)
            if name is None or name in own or name not in PURE:
                return False
    return True


def _function(call: ast.FuncCall) -> str | None:
    """The name of a function a call names, when it is a built-in's; else None."""
    parts = _strings(call.funcname)
    if len(parts) == 2 and parts[0] == "pg_catalog":
        return parts[1]
    if len(parts) == 1:
        return parts[0]
    return None


def _literal(node: object) -> str | None:
    while isinstance(node, ast.TypeCast):
        node = node.arg
    if isinstance(node, ast.A_Const) and not node.isnull:
        val = node.val
        if isinstance(val, ast.Integer):
            return str(val.ival)
        if isinstance(val, ast.Float):
            try:
                return str(int(str(val.fval)))
            except ValueError:
                return None
        if isinstance(val, ast.String):
            return str(val.sval)
    return None


_QUALIFIED = re.compile(r'^(?:(?:"(?:[^"]|"")+"|[^".\s]+)\.){0,2}("(?:[^"]|"")+"|[^".\s]+)$')


def _sequence_arg(call: ast.FuncCall) -> str | None:
    """The relation name of a sequence argument written as a literal
    (``'s'``, ``'public.s'``, ``'"S"'::regclass``), folded as PostgreSQL does."""
    args = _items(call.args)
    if not args:
        return None
    text = _literal(args[0])
    if text is None:
        return None
    found = _QUALIFIED.match(text.strip())
    if found is None:
        return None
    last = found.group(1)
    return last[1:-1].replace('""', '"') if last.startswith('"') else last.lower()


def _advisory(name: str, call: ast.FuncCall) -> Footprint:
    if name == "pg_advisory_unlock_all":
        return Footprint(writes=frozenset({ANY_ADVISORY}))
    keys = [_literal(a) for a in _items(call.args)]
    if not keys or any(k is None for k in keys):
        return Footprint(writes=frozenset({ANY_ADVISORY}))
    resource = "advisory:" + ",".join(k for k in keys if k is not None)
    if name.endswith("_shared"):
        return Footprint(reads=frozenset({resource, ANY_ADVISORY}))
    return Footprint(reads=frozenset({ANY_ADVISORY}), writes=frozenset({resource}))


def _data(stmt: ast.Node, schema: Schema | None) -> Footprint | None:
    """SELECT, INSERT, UPDATE, DELETE, MERGE, with their WITH clauses and subqueries."""
    reads: set[str] = set()
    writes: set[str] = set()
    targets: set[str] = set()
    # FOR UPDATE OF names refer to the FROM clause's relations (or aliases): not relations.
    references = {
        id(r) for n in _walk(stmt) if isinstance(n, ast.LockingClause) for r in _items(n.lockedRels)
    }
    for node in _walk(stmt):
        if isinstance(node, ast.SelectStmt) and node.intoClause is not None:
            return None  # SELECT INTO creates a table
        if isinstance(node, ast.InsertStmt | ast.UpdateStmt | ast.DeleteStmt | ast.MergeStmt):
            targets.add(_relname(node.relation))
        elif isinstance(node, ast.RangeVar) and id(node) not in references:
            reads.add(_relname(node))
        elif isinstance(node, ast.SelectStmt) and node.lockingClause:
            writes |= _locked(node)
        elif isinstance(node, ast.FuncCall):
            name = _function(node)
            if name is None or (schema is not None and name in schema.functions):
                return None
            if _ADVISORY.fullmatch(name):
                fp = _advisory(name, node)
                reads |= fp.reads
                writes |= fp.writes
            elif name in ("nextval", "setval"):
                seq = _sequence_arg(node)
                if seq is None:
                    return None
                writes.add(seq)
            elif name not in PURE:
                return None
    writes |= targets
    if schema is not None:
        # A name of the statement's own CTEs is no relation, unless the schema has one
        # of that name (then it may be either: keep it).
        ctes = _cte_names(stmt)
        reads = {r for r in reads if r in schema.relations or r not in ctes}
        writes = {w for w in writes if w in schema.relations or w not in ctes}
        named = {r for r in reads | writes if not r.startswith("advisory:")}
        if not named <= schema.relations:
            return None
        for t in targets:
            writes |= schema.implied.get(t, frozenset())
    return Footprint(reads=frozenset(reads - writes), writes=frozenset(writes))


def _locked(select: ast.SelectStmt) -> set[str]:
    """The relations a ``FOR UPDATE/SHARE [OF ...]`` clause locks: those it names (by
    name or alias), or every relation in the FROM clause where that is unclear."""
    every: set[str] = set()
    named: dict[str, set[str]] = {}
    for r in _walk(select.fromClause):
        if isinstance(r, ast.RangeVar):
            every.add(_relname(r))
            alias = r.alias.aliasname if isinstance(r.alias, ast.Alias) else r.relname
            named.setdefault(str(alias), set()).add(_relname(r))
    out: set[str] = set()
    for clause in _items(select.lockingClause):
        if not isinstance(clause, ast.LockingClause):
            return every
        names = [_relname(r) for r in _items(clause.lockedRels)]
        if not names or any(len(named.get(n, ())) != 1 for n in names):
            return every
        for n in names:
            out |= named[n]
    return out


def _cte_names(stmt: ast.Node) -> set[str]:
    """Names of the statement's CTEs that no reference can mean a relation by: a
    reference inside a non-recursive CTE's own query to its own name is the relation."""
    names: set[str] = set()
    real: set[str] = set()
    for node in _walk(stmt):
        if isinstance(node, ast.WithClause):
            for cte in _items(node.ctes):
                if not isinstance(cte, ast.CommonTableExpr):
                    continue
                names.add(str(cte.ctename))
                if not node.recursive and any(
                    isinstance(r, ast.RangeVar) and not r.schemaname and r.relname == cte.ctename
                    for r in _walk(cte.ctequery)
                ):
                    real.add(str(cte.ctename))
    return names - real
