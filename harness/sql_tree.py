"""Reading PostgreSQL's own parse tree (``pglast``, libpg_query) for footprints:
statements parsed, nodes walked, names and literals read, and which built-in
functions touch nothing another session can see (``PURE``)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache

from pglast import ast, enums
from pglast.parser import ParseError, parse_sql

__all__ = [
    "ISOLATION_NAMES",
    "PURE",
    "changes_data",
    "function",
    "is_control",
    "isolation",
    "items",
    "level",
    "literal",
    "parse",
    "relname",
    "sequence_arg",
    "set_level",
    "sets_isolation",
    "strings",
    "walk",
]


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

ISOLATION_NAMES = {"transaction_isolation", "default_transaction_isolation"}
QUALIFIED = re.compile(r'^(?:(?:"(?:[^"]|"")+"|[^".\s]+)\.){0,2}("(?:[^"]|"")+"|[^".\s]+)$')


def parse(sql: str) -> tuple[ast.Node, ...] | None:
    try:
        raw = parse_sql(sql)
    except ParseError:
        return None
    out = tuple(r.stmt for r in raw if r.stmt is not None)
    return out


_WRITES = (ast.InsertStmt, ast.UpdateStmt, ast.DeleteStmt, ast.MergeStmt)
_FIRST = frozenset({"INSERT", "UPDATE", "DELETE", "MERGE", "WITH"})
_LEADING = re.compile(r"(?:\s+|--[^\n]*|/\*.*?\*/)+", re.DOTALL)
"""Blanks and comments before a statement's first word."""


@lru_cache(maxsize=4096)
def changes_data(sql: str) -> bool:
    """Whether ``sql`` is one ``INSERT``, ``UPDATE``, ``DELETE`` or ``MERGE``, or a
    ``WITH`` query one of whose parts is (PostgreSQL's parser says; unparsable SQL,
    several statements and a ``SELECT`` calling a function that may write are not):
    the statements an autocommit session may have raced between their work and
    their commit."""
    lead = _LEADING.match(sql)
    words = sql[lead.end() if lead else 0 :].split(None, 1)
    if not words or words[0].upper().rstrip("(") not in _FIRST:
        return False  # most statements: no parse needed
    statements = parse(sql)
    if statements is None or len(statements) != 1:
        return False
    (statement,) = statements
    if isinstance(statement, _WRITES):
        return True
    return isinstance(statement, ast.SelectStmt) and any(
        isinstance(node, _WRITES) for node in walk(statement)
    )


def walk(node: object) -> Iterator[ast.Node]:
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


def strings(value: object) -> list[str]:
    """The strings of a list of name parts (``String`` nodes)."""
    return [str(s.sval) for s in items(value) if isinstance(s, ast.String)]


def relname(rv: object) -> str:
    return str(rv.relname) if isinstance(rv, ast.RangeVar) else ""


def items(value: object) -> tuple[object, ...]:
    return tuple(value) if isinstance(value, tuple | list) else ()


def isolation(options: object) -> str | None:
    for opt in items(options):
        if isinstance(opt, ast.DefElem) and opt.defname == "transaction_isolation":
            return level(opt.arg)
    return None


def level(arg: object) -> str:
    if isinstance(arg, ast.A_Const) and isinstance(arg.val, ast.String):
        given = str(arg.val.sval).lower().replace("_", " ")
        return "read committed" if given == "read uncommitted" else given
    return "serializable"  # unreadable: assume the strictest


def sets_isolation(stmt: ast.VariableSetStmt) -> bool:
    if stmt.name in ISOLATION_NAMES or stmt.kind == enums.VariableSetKind.VAR_RESET_ALL:
        return True
    return (
        stmt.name in ("TRANSACTION", "SESSION CHARACTERISTICS") and isolation(stmt.args) is not None
    )


def set_level(stmt: ast.VariableSetStmt) -> str:
    if stmt.kind == enums.VariableSetKind.VAR_RESET_ALL:
        return "serializable"  # back to a default that is unknown here
    if stmt.kind != enums.VariableSetKind.VAR_SET_VALUE and stmt.name in ISOLATION_NAMES:
        return "serializable"  # RESET or DEFAULT: the server's default is unknown here
    if stmt.name in ISOLATION_NAMES:
        return level((stmt.args or (None,))[0])
    return isolation(stmt.args) or "serializable"


def is_control(stmt: ast.Node) -> bool:
    return isinstance(
        stmt,
        ast.VariableSetStmt | ast.VariableShowStmt | ast.PrepareStmt | ast.DeallocateStmt,
    )


def function(call: ast.FuncCall) -> str | None:
    """The name of a function a call names, when it is a built-in's; else None."""
    parts = strings(call.funcname)
    if len(parts) == 2 and parts[0] == "pg_catalog":
        return parts[1]
    if len(parts) == 1:
        return parts[0]
    return None


def literal(node: object) -> str | None:
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


def sequence_arg(call: ast.FuncCall) -> str | None:
    """The relation name of a sequence argument written as a literal
    (``'s'``, ``'public.s'``, ``'"S"'::regclass``), folded as PostgreSQL does."""
    args = items(call.args)
    if not args:
        return None
    text = literal(args[0])
    if text is None:
        return None
    found = QUALIFIED.match(text.strip())
    if found is None:
        return None
    last = found.group(1)
    return last[1:-1].replace('""', '"') if last.startswith('"') else last.lower()
