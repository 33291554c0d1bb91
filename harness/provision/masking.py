"""Keeping passwords out of everything racesim prints.

Connection strings are read with libpq's own parser (``psycopg.conninfo``), never
with patterns on the text: a password holding ``&``, ``"``, ``'``, ``%``, ``@`` or
spaces is found exactly where libpq finds it. Every password racesim parses is
remembered for the life of the process, and :func:`mask_dsn` replaces it (and the
ways it may be spelled: percent-encoded, libpq-quoted, ``repr``, JSON) in any text.

Example::

    >>> masked_conninfo("postgresql://u:Tr0ub%26dor3@h/db")
    'user=u password=*** dbname=db host=h'
    >>> mask_dsn("cannot connect: password=Tr0ub&dor3")
    'cannot connect: password=***'
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Mapping

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

__all__ = ["MASK", "SECRET_KEYS", "malformed_reason", "mask_dsn", "masked_conninfo", "remember"]

MASK = "***"
SECRET_KEYS = frozenset(
    {"password", "sslpassword", "scram_client_key", "scram_server_key", "oauth_client_secret"}
)
"""libpq keywords whose values are secrets."""

_lock = threading.Lock()
_spellings: set[str] = set()
_JOIN_AT_MOST = 8  # tokens a quoted password with spaces may span in free text


def remember(params: Mapping[str, object]) -> None:
    """Remember the secrets among parsed ``params`` so that :func:`mask_dsn` hides them."""
    for key in SECRET_KEYS:
        value = params.get(key)
        if value:
            _remember_secret(str(value))


def _remember_secret(secret: str) -> None:
    with _lock:
        _spellings.update(_spellings_of(secret))


def _spellings_of(secret: str) -> set[str]:
    """How ``secret`` may be written: as is, percent-encoded, libpq-quoted, repr, JSON."""
    forms = {
        secret,
        urllib.parse.quote(secret, safe=""),
        urllib.parse.quote(secret),
        urllib.parse.quote_plus(secret),
        secret.replace("\\", "\\\\").replace("'", "\\'"),
        repr(secret)[1:-1],
        json.dumps(secret)[1:-1],
    }
    return {f for f in forms if f}


def _replace(text: str, spellings: set[str]) -> str:
    for spelling in sorted(spellings, key=len, reverse=True):
        text = text.replace(spelling, MASK)
    return text


def _parse(text: str) -> dict[str, object] | None:
    try:
        return dict(conninfo_to_dict(text))
    except (psycopg.Error, ValueError):
        return None


def masked_conninfo(dsn: str) -> str:
    """``dsn`` in libpq keyword form with every secret replaced by ``***``.

    An unparsable ``dsn`` is not shown at all: where its password ends is unknown.
    """
    params = _parse(dsn)
    if params is None:
        return "(connection string not shown: it does not parse)"
    remember(params)
    shown = {k: (MASK if k in SECRET_KEYS else str(v)) for k, v in params.items() if v is not None}
    return make_conninfo(**shown)


def malformed_reason(message: str) -> str:
    """libpq's reason for rejecting a connection string, without the string's pieces.

    libpq quotes the pieces it complains about (``missing "=" after "..."``); a
    piece may be part of a password, so only connection keywords and ``=`` stay.
    """
    keywords = _keywords()
    parts = " ".join(message.split()).split('"')
    for i in range(1, len(parts), 2):
        if parts[i] != "=" and parts[i] not in keywords:
            parts[i] = MASK
    return '"'.join(parts)


def _keywords() -> frozenset[str]:
    return frozenset(o.keyword.decode() for o in psycopg.pq.Conninfo.get_defaults())


def mask_dsn(text: str) -> str:
    """``text`` with every password hidden: those racesim has parsed anywhere, and
    those of any connection string (URI or ``password=...``) written in the text.

    >>> mask_dsn("postgresql://u:s3cret@h/db and password=s3cret")
    'postgresql://u:***@h/db and password=***'
    """
    with _lock:
        known = set(_spellings)
    text = _replace(text, known)
    return _hide_unparsed("\n".join(_mask_line(line) for line in text.split("\n")))


def _mask_line(line: str) -> str:
    """Parse every connection string in ``line``; hide its secrets where they stand."""
    tokens = line.split(" ")
    out: list[str] = []
    i = 0
    while i < len(tokens):
        token, taken = tokens[i], 1
        lowered = token.lower()
        start = lowered.find("postgres")
        if start >= 0 and "://" in lowered[start:]:
            params = _parse(token[start:].strip("'\"()[],;"))
            if params is not None:
                token = _replace(token, _secrets(params))
        keys = [lowered.find(k) for k in SECRET_KEYS if k in lowered]
        if keys and "://" not in lowered:
            # The keyword form: a quoted value may hold spaces, so try longer spans.
            begin = min(keys)
            for span in range(1, min(len(tokens) - i, _JOIN_AT_MOST) + 1):
                params = _parse(" ".join([token[begin:], *tokens[i + 1 : i + span]]))
                secrets = _secrets(params) if params is not None else set()
                if secrets:
                    token = _replace(" ".join([token, *tokens[i + 1 : i + span]]), secrets)
                    taken = span
                    break
        out.append(token)
        i += taken
    return " ".join(out)


def _secrets(params: Mapping[str, object]) -> set[str]:
    found: set[str] = set()
    for key in SECRET_KEYS:
        value = params.get(key)
        if value:
            found |= _spellings_of(str(value))
    return found


def _hide_unparsed(text: str) -> str:
    """Cut ``password=<value>`` that no parse could delimit: up to the end of the line."""
    lines = text.split("\n")
    for n, line in enumerate(lines):
        lowered = line.lower()
        for key in SECRET_KEYS:
            at = lowered.find(key + "=")
            while at >= 0:
                value_at = at + len(key) + 1
                rest = line[value_at:]
                if not rest.startswith((MASK, f"'{MASK}'")):
                    line = line[:value_at] + MASK
                    lowered = line.lower()
                at = lowered.find(key + "=", value_at)
        lines[n] = line
    return "\n".join(lines)
