"""What one SQL statement reads and writes, from its parse tree (``racesim.sql_tree``):
the resources of ``racesim.footprints``, or None where that cannot be said."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from pglast import ast, enums

from racesim.sql_tree import (
    PURE,
    function,
    is_control,
    items,
    literal,
    relname,
    sequence_arg,
    strings,
    walk,
)
from racesim.system import Footprint

__all__ = ["ANY_ADVISORY", "SIMPLE_ALTER", "Schema", "draws", "functions_ok", "statement", "union"]

ANY_ADVISORY = "advisory:*"

ADVISORY = re.compile(r"pg_(try_)?advisory_(xact_)?(lock|unlock)(_shared)?|pg_advisory_unlock_all")
SIMPLE_ALTER = frozenset(
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
DROPPABLE = frozenset(
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


def union(found: list[Footprint | None]) -> Footprint | None:
    if any(f is None for f in found):
        return None
    reads: set[str] = set()
    writes: set[str] = set()
    for f in found:
        assert f is not None
        reads |= f.reads
        writes |= f.writes
    return Footprint(reads=frozenset(reads - writes), writes=frozenset(writes))


def statement(stmt: ast.Node, schema: Schema | None) -> Footprint | None:
    """The footprint of one statement other than transaction control."""
    if is_control(stmt):
        if isinstance(stmt, ast.PrepareStmt):
            return Footprint()  # preparing runs nothing; EXECUTE is not read
        return Footprint()
    if isinstance(stmt, ast.ExplainStmt | ast.DeclareCursorStmt):
        return statement(stmt.query, schema) if stmt.query is not None else None
    if isinstance(
        stmt, ast.SelectStmt | ast.InsertStmt | ast.UpdateStmt | ast.DeleteStmt | ast.MergeStmt
    ):
        return data(stmt, schema)
    if isinstance(stmt, ast.LockStmt):
        return named([relname(r) for r in items(stmt.relations)], schema)
    return ddl(stmt, schema)


def named(names: list[str], schema: Schema | None) -> Footprint | None:
    if schema is not None and not set(names) <= schema.relations:
        return None
    writes = set(names)
    for name in names:
        writes |= schema.implied.get(name, frozenset()) if schema else set()
    return Footprint(writes=frozenset(writes))


def ddl(stmt: ast.Node, schema: Schema | None) -> Footprint | None:
    if functions_ok(stmt, schema.functions if schema else frozenset()) is False:
        return None
    if isinstance(stmt, ast.CreateStmt):
        if stmt.inhRelations or stmt.partspec or stmt.partbound or stmt.ofTypename:
            return None
        if has_foreign_key(stmt) or draws(stmt) != frozenset():
            return None
        return named([relname(stmt.relation)], schema)
    if isinstance(stmt, ast.AlterTableStmt):
        if stmt.objtype != enums.ObjectType.OBJECT_TABLE or has_foreign_key(stmt):
            return None
        if not all(
            isinstance(c, ast.AlterTableCmd) and c.subtype in SIMPLE_ALTER for c in items(stmt.cmds)
        ):
            return None
        if draws(stmt) != frozenset():
            return None
        return named([relname(stmt.relation)], schema)
    if isinstance(stmt, ast.IndexStmt):
        return named([relname(stmt.relation)], schema)
    if isinstance(stmt, ast.TruncateStmt):
        if stmt.behavior == enums.DropBehavior.DROP_CASCADE or stmt.restart_seqs:
            return None
        return named([relname(r) for r in items(stmt.relations)], schema)
    if isinstance(stmt, ast.DropStmt):
        if stmt.behavior == enums.DropBehavior.DROP_CASCADE or stmt.removeType not in DROPPABLE:
            return None
        if stmt.removeType == enums.ObjectType.OBJECT_INDEX:
            return None  # which table an index belongs to is not in the statement
        names = [(strings(obj) or [""])[-1] for obj in items(stmt.objects)]
        return named(names, schema)
    if isinstance(stmt, ast.VacuumStmt):
        # VACUUM and ANALYZE change no row a query sees, but they lock what they name.
        rels = [relname(v.relation) for v in items(stmt.rels) if isinstance(v, ast.VacuumRelation)]
        return named(rels, schema) if rels else None
    if isinstance(stmt, ast.CreateSeqStmt):
        return named([relname(stmt.sequence)], schema)
    if isinstance(stmt, ast.AlterSeqStmt):
        return named([relname(stmt.sequence)], schema)
    return None


def has_foreign_key(stmt: ast.Node) -> bool:
    return any(
        isinstance(n, ast.Constraint) and n.contype == enums.ConstrType.CONSTR_FOREIGN
        for n in walk(stmt)
    )


def draws(stmt: ast.Node) -> frozenset[str] | None:
    """The sequences a table definition's expressions draw on (``nextval('s')``),
    or None when they call anything else not known to be pure."""
    drawn: set[str] = set()
    for node in walk(stmt):
        if not isinstance(node, ast.FuncCall):
            continue
        name = function(node)
        if name in ("nextval", "setval"):
            seq = sequence_arg(node)
            if seq is None:
                return None
            drawn.add(seq)
        elif name is None or name not in PURE:
            return None
    return frozenset(drawn)


def functions_ok(stmt: ast.Node, own: frozenset[str]) -> bool:
    for node in walk(stmt):
        if isinstance(node, ast.FuncCall):
            name = function(node)
            if name is None or name in own or name not in PURE:
                return False
    return True


def advisory(name: str, call: ast.FuncCall) -> Footprint:
    if name == "pg_advisory_unlock_all":
        return Footprint(writes=frozenset({ANY_ADVISORY}))
    keys = [literal(a) for a in items(call.args)]
    if not keys or any(k is None for k in keys):
        return Footprint(writes=frozenset({ANY_ADVISORY}))
    resource = "advisory:" + ",".join(k for k in keys if k is not None)
    if name.endswith("_shared"):
        return Footprint(reads=frozenset({resource, ANY_ADVISORY}))
    return Footprint(reads=frozenset({ANY_ADVISORY}), writes=frozenset({resource}))


def data(stmt: ast.Node, schema: Schema | None) -> Footprint | None:
    """SELECT, INSERT, UPDATE, DELETE, MERGE, with their WITH clauses and subqueries."""
    reads: set[str] = set()
    writes: set[str] = set()
    targets: set[str] = set()
    # FOR UPDATE OF names refer to the FROM clause's relations (or aliases): not relations.
    references = {
        id(r) for n in walk(stmt) if isinstance(n, ast.LockingClause) for r in items(n.lockedRels)
    }
    for node in walk(stmt):
        if isinstance(node, ast.SelectStmt) and node.intoClause is not None:
            return None  # SELECT INTO creates a table
        if isinstance(node, ast.InsertStmt | ast.UpdateStmt | ast.DeleteStmt | ast.MergeStmt):
            targets.add(relname(node.relation))
        elif isinstance(node, ast.RangeVar) and id(node) not in references:
            reads.add(relname(node))
        elif isinstance(node, ast.SelectStmt) and node.lockingClause:
            writes |= locked(node)
        elif isinstance(node, ast.FuncCall):
            name = function(node)
            if name is None or (schema is not None and name in schema.functions):
                return None
            if ADVISORY.fullmatch(name):
                fp = advisory(name, node)
                reads |= fp.reads
                writes |= fp.writes
            elif name in ("nextval", "setval"):
                seq = sequence_arg(node)
                if seq is None:
                    return None
                writes.add(seq)
            elif name not in PURE:
                return None
    writes |= targets
    if schema is not None:
        # A name of the statement's own CTEs is no relation, unless the schema has one
        # of that name (then it may be either: keep it).
        ctes = cte_names(stmt)
        reads = {r for r in reads if r in schema.relations or r not in ctes}
        writes = {w for w in writes if w in schema.relations or w not in ctes}
        relations = {r for r in reads | writes if not r.startswith("advisory:")}
        if not relations <= schema.relations:
            return None
        for t in targets:
            writes |= schema.implied.get(t, frozenset())
    return Footprint(reads=frozenset(reads - writes), writes=frozenset(writes))


def locked(select: ast.SelectStmt) -> set[str]:
    """The relations a ``FOR UPDATE/SHARE [OF ...]`` clause locks: those it names (by
    name or alias), or every relation in the FROM clause where that is unclear."""
    every: set[str] = set()
    by_alias: dict[str, set[str]] = {}
    for r in walk(select.fromClause):
        if isinstance(r, ast.RangeVar):
            every.add(relname(r))
            alias = r.alias.aliasname if isinstance(r.alias, ast.Alias) else r.relname
            by_alias.setdefault(str(alias), set()).add(relname(r))
    out: set[str] = set()
    for clause in items(select.lockingClause):
        if not isinstance(clause, ast.LockingClause):
            return every
        names = [relname(r) for r in items(clause.lockedRels)]
        if not names or any(len(by_alias.get(n, ())) != 1 for n in names):
            return every
        for n in names:
            out |= by_alias[n]
    return out


def cte_names(stmt: ast.Node) -> set[str]:
    """Names of the statement's CTEs that no reference can mean a relation by: a
    reference inside a non-recursive CTE's own query to its own name is the relation."""
    names: set[str] = set()
    real: set[str] = set()
    for node in walk(stmt):
        if isinstance(node, ast.WithClause):
            for cte in items(node.ctes):
                if not isinstance(cte, ast.CommonTableExpr):
                    continue
                names.add(str(cte.ctename))
                if not node.recursive and any(
                    isinstance(r, ast.RangeVar) and not r.schemaname and r.relname == cte.ctename
                    for r in walk(cte.ctequery)
                ):
                    real.add(str(cte.ctename))
    return names - real
