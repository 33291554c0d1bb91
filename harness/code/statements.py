"""What a round trip psycopg is about to make sends: its SQL and the user's line.

psycopg sends every statement through ``Connection.wait(gen)`` (``AsyncConnection.wait``
for async), with ``gen`` a generator that has not started yet. Its code name and
arguments say what it will send: a cursor's ``execute`` (``_execute_gen``), an
``executemany``, a ``COPY``, a commit or rollback, a ``transaction()`` block's entry
or exit, a named cursor's ``DECLARE``/``FETCH``/``MOVE``/``CLOSE``. Waits that send
nothing (autocommit and isolation settings, pipeline bookkeeping, notifications) are
not statements.
"""

from __future__ import annotations

import os
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, GeneratorType
from typing import Any

import psycopg
from psycopg import pq, sql

__all__ = ["Statement", "describe_wait", "own_file", "user_frame"]

IDLE = pq.TransactionStatus.IDLE

_NOT_STATEMENTS = frozenset(
    {
        "_set_autocommit_gen",
        "_set_isolation_level_gen",
        "_set_read_only_gen",
        "_set_deferrable_gen",
        "_sync_gen",
        "notifies",
        "_stream_fetchone_gen",  # the rows of a stream() belong to its statement's step
        # a COPY's data and its end belong to the step of its COPY statement
        "copy_to",
        "copy_end",
        "copy_from",
        "_read_gen",
        "_read_row_gen",
        "_end_copy_out_gen",
        "_write_gen",
    }
)


@dataclass(frozen=True)
class Statement:
    """One statement a function is about to send."""

    sql: str
    file: str = ""
    line: int = 0

    @property
    def source(self) -> str:
        """``file:line`` of the user's code that sent it ("" when unknown)."""
        return f"{self.file}:{self.line}" if self.file else ""


def _text(conn: Any, query: Any, params: Any = None) -> str:
    """``query`` with ``params`` written in as literals (the query alone if they do not fit)."""
    try:
        if params:
            writer = getattr(conn, "_racesim_writer", None)
            if writer is None:
                writer = conn._racesim_writer = psycopg.ClientCursor(conn)
            return str(writer.mogrify(query, params))
        text = query.as_string(conn) if isinstance(query, sql.Composable) else query
        return text.decode() if isinstance(text, bytes) else str(text)
    except Exception:  # a query psycopg will refuse itself when it is sent
        return str(query)


def _many(conn: Any, query: Any, params_seq: Any) -> str:
    """An ``executemany``: each statement it sends with its parameters written in; the
    query alone when the parameters come from an iterator (reading it would use it up)."""
    if isinstance(params_seq, list | tuple) and params_seq:
        return "; ".join(_text(conn, query, params) for params in params_seq)
    return _text(conn, query) + "  -- executemany"


def _command(conn: Any, command: str) -> str | None:
    """A commit or rollback: sent only inside a transaction."""
    return None if conn.pgconn.transaction_status == IDLE else command


def describe_wait(conn: Any, gen: Any) -> str | None:
    """The SQL that ``conn.wait(gen)`` will send, or None when it sends no statement."""
    if not isinstance(gen, GeneratorType) or gen.gi_frame is None:
        return "(statement)"
    name = gen.gi_code.co_name
    if name in _NOT_STATEMENTS or (name.startswith("_enter_gen") and _is_pipeline(gen)):
        return None
    text = _describe(conn, gen, name, gen.gi_frame.f_locals)
    begins = not conn.autocommit and conn.pgconn.transaction_status == IDLE
    if text is not None and begins and name in _BEGINS:  # psycopg sends BEGIN first
        return f"{_begin(conn)}; {text}"
    return text


_BEGINS = frozenset(
    {
        "_execute_gen",
        "_executemany_gen_pipeline",
        "_executemany_gen_no_pipeline",
        "_start_copy_gen",
        "_declare_gen",
        "_stream_send_gen",
    }
)


def _describe(conn: Any, gen: Any, name: str, args: dict[str, Any]) -> str | None:
    owner: Any = args.get("self")
    if name in ("_execute_gen", "_stream_send_gen"):
        return _text(conn, args.get("query"), args.get("params"))
    if name.startswith("_executemany_gen"):
        return _many(conn, args.get("query"), args.get("params_seq"))
    if name == "_start_copy_gen":
        return _text(conn, args.get("statement"), args.get("params"))
    if name == "_commit_gen" and isinstance(owner, psycopg.Connection | psycopg.AsyncConnection):
        return _command(conn, "COMMIT")
    if name == "_rollback_gen" and isinstance(owner, psycopg.Connection | psycopg.AsyncConnection):
        return _command(conn, "ROLLBACK")
    if isinstance(owner, psycopg.Transaction | psycopg.AsyncTransaction):
        return _transaction(conn, owner, name, args)
    if name == "_declare_gen":
        return (
            f"DECLARE {owner.name} CURSOR FOR {_text(conn, args.get('query'), args.get('params'))}"
        )
    if name == "_fetch_gen" and hasattr(owner, "name"):
        num = args.get("num")
        return f"FETCH FORWARD {'ALL' if num is None else num} FROM {owner.name}"
    if name == "_scroll_gen":
        return f"MOVE {args.get('value')} FROM {owner.name}"
    if name == "_close_gen" and hasattr(owner, "name"):
        return f"CLOSE {owner.name}"
    if isinstance(owner, _PIPELINES):
        return None
    return f"({name.strip('_')})"


_PIPELINES = (psycopg.Pipeline, psycopg.AsyncPipeline)


def _is_pipeline(gen: GeneratorType[Any, Any, Any]) -> bool:
    assert gen.gi_frame is not None
    return isinstance(gen.gi_frame.f_locals.get("self"), _PIPELINES)


def _transaction(conn: Any, tx: Any, name: str, args: dict[str, Any]) -> str | None:
    point = tx.savepoint_name
    if name == "_enter_gen":
        if conn.pgconn.transaction_status == IDLE:
            return _begin(conn) + (f"; SAVEPOINT {_name(conn, point)}" if point else "")
        # an inner block without a name gets psycopg's own as it enters: _pg3_<depth>
        point = point or f"_pg3_{getattr(conn, '_num_transactions', 0) + 1}"
        return f"SAVEPOINT {_name(conn, point)}"
    if name == "_exit_gen":
        failed = args.get("exc_val") is not None or tx.force_rollback
        if getattr(tx, "_outer_transaction", not point):
            return "ROLLBACK" if failed else "COMMIT"
        point = _name(conn, point)
        return f"ROLLBACK TO {point}; RELEASE {point}" if failed else f"RELEASE {point}"
    return f"({name.strip('_')})"


def _name(conn: Any, point: str) -> str:
    """A savepoint's name as psycopg writes it (an identifier, quoted)."""
    return sql.Identifier(point).as_string(conn)


def _begin(conn: Any) -> str:
    """The BEGIN psycopg sends, with the connection's isolation level and access mode."""
    start = getattr(conn, "_get_tx_start_command", None)
    text = start() if callable(start) else b"BEGIN"
    return text.decode() if isinstance(text, bytes) else str(text)


def _library_dirs() -> tuple[str, ...]:
    here = Path(__file__).resolve().parent.parent  # racesim itself
    found = [str(here), str(Path(psycopg.__file__).resolve().parent)]
    for key in ("stdlib", "platstdlib"):
        path = sysconfig.get_paths().get(key)
        if path:
            found.append(str(Path(path).resolve()))
    for module in ("sqlalchemy", "psycopg_binary", "psycopg_c", "psycopg_pool", "greenlet"):
        loaded = sys.modules.get(module)
        where = getattr(loaded, "__file__", None)
        if where:
            found.append(str(Path(where).resolve().parent))
    return tuple(dict.fromkeys(d + os.sep for d in found))


_SKIP: tuple[str, ...] = ()


def user_frame(start: FrameType | None) -> tuple[str, int]:
    """``(file, line)`` of the first frame from ``start`` outwards that is the user's own:
    outside racesim, psycopg, SQLAlchemy and the standard library."""
    global _SKIP
    if not _SKIP or ("sqlalchemy" in sys.modules and not any("sqlalchemy" in d for d in _SKIP)):
        _SKIP = _library_dirs()
        _OWN.clear()
    frame = start
    while frame is not None:
        shown = _OWN.get(frame.f_code.co_filename)
        if shown is None:
            shown = _OWN[frame.f_code.co_filename] = _own(frame.f_code.co_filename)
        if shown:
            return shown, frame.f_lineno
        frame = frame.f_back
    return "", 0


def own_file(path: str) -> str:
    """``path`` as shown when it is a file of the user's own code, else ""."""
    global _SKIP
    if not _SKIP:
        _SKIP = _library_dirs()
    if path not in _OWN:
        _OWN[path] = _own(path)
    return _OWN[path]


_OWN: dict[str, str] = {}
"""Per code file: the path shown for it when it is the user's own, else ""."""


def _own(path: str) -> str:
    if path.startswith("<"):
        return ""
    full = os.path.realpath(path)
    return "" if full.startswith(_SKIP) else _shown(full)


def _shown(path: str) -> str:
    """A path relative to the current directory when it is below it, else as it is."""
    try:
        return os.path.relpath(path) if Path(path).is_relative_to(Path.cwd()) else path
    except ValueError:
        return path
