"""Connections a user's function opens itself: told once, never gated.

racesim gates the statements of the connection it hands the function; a connection
the function makes with ``psycopg.connect`` (or ``AsyncConnection.connect``) talks
to the server on its own, so no schedule orders its statements and no lock wait of
theirs is seen. racesim says so once per system (a ``racesim: note:`` line on
stderr) with the user's line that opened it, however short-lived the connection.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

from psycopg._connection_base import BaseConnection

from racesim.code.statements import user_frame

__all__ = ["in_function", "note"]

_HERE = threading.local()


def note(told: set[str], kind: str, text: str) -> None:
    """Write ``racesim: note: text`` unless ``told`` has ``kind`` already."""
    if kind in told:
        return
    told.add(kind)
    sys.stderr.write(f"racesim: note: {text}\n")
    sys.stderr.flush()


def in_function(told: set[str] | None) -> None:
    """The current thread runs a user's function now (the notes its system has given),
    or no longer (None)."""
    _HERE.told = told


def _opened(told: set[str]) -> None:
    file, line = user_frame(sys._getframe(2))
    where = f" at {file}:{line}" if file else ""
    note(
        told,
        "foreign",
        f"the function opens a connection of its own{where}; racesim did not make it, so"
        " its statements are not steps, no schedule orders them and no lock wait of"
        " theirs is seen; fix: send them on the connection racesim gives the function",
    )


def _install() -> None:
    connect_gen = BaseConnection.__dict__["_connect_gen"].__func__

    def watched(cls: Any, conninfo: str = "") -> Any:
        told = getattr(_HERE, "told", None)
        if told is not None:
            _opened(told)
        return connect_gen(cls, conninfo)

    BaseConnection._connect_gen = classmethod(watched)  # type: ignore[method-assign,assignment]


_install()
