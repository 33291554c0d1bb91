"""The words of a ``.spec``: its text read as tokens (as isolationtester's
``specscanner.l`` reads it), and names and SQL blocks written so that it reads
them back as they were meant (:mod:`racesim.spec.parse` is the grammar over them).
"""

from __future__ import annotations

from dataclasses import dataclass

from racesim.errors import InputError

__all__ = ["KEYWORDS", "Token", "describe", "quote_name", "scan", "sql_block"]

KEYWORDS = ("notices", "permutation", "session", "setup", "step", "teardown")
_SPACE = " \t\r\f"
_PUNCT = ",()*"


def quote_name(name: str) -> str:
    """``name`` as a spec writes it: bare when it is a plain identifier, else quoted."""
    plain = (
        name
        and name not in KEYWORDS
        and _ident_start(name[0])
        and all(_ident_char(c) for c in name[1:])
    )
    return name if plain else '"' + name.replace('"', '""') + '"'


def sql_block(
    sql: str, what: str = "an SQL text", fix: str = "avoid } in SQL", *, lines: bool = False
) -> str:
    """``sql`` as a spec writes it, ``{ sql }`` (with ``lines``, ``{``, the SQL and ``}``
    on lines of their own); InputError when it holds ``}``, which ends a block."""
    if "}" in sql:
        raise InputError(f"{what} holds '}}', which no .spec block can hold; fix: {fix}")
    return "{\n" + sql + "\n}" if lines else "{ " + sql + " }"


def _ident_start(c: str) -> bool:
    return (c.isascii() and (c.isalpha() or c == "_")) or ord(c) >= 0x80


def _ident_char(c: str) -> bool:
    return _ident_start(c) or (c.isdigit() and c.isascii()) or c == "$"


@dataclass(frozen=True)
class Token:
    kind: str  # keyword text, "name", "sql", "int", a punctuation char, or "end"
    value: str
    line: int


def describe(tok: Token) -> str:
    if tok.kind == "end":
        return "the end of the file"
    if tok.kind == "sql":
        return "an SQL block"
    if tok.kind == "name":
        return f"name {tok.value!r}"
    if tok.kind == "int":
        return f"number {tok.value}"
    return repr(tok.value)


def scan(text: str, path: str) -> list[Token]:
    tokens: list[Token] = []
    i, line, n = 0, 1, len(text)
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
            i += 1
        elif c in _SPACE:
            i += 1
        elif c == "#":
            while i < n and text[i] not in "\n\r":
                i += 1
        elif c == '"':
            start, buf = line, []
            i += 1
            while True:
                if i >= n:
                    raise InputError(
                        f'{path}:{start}: unterminated quoted name; fix: close it with "'
                    )
                ch = text[i]
                if ch == "\n":
                    raise InputError(
                        f"{path}:{start}: newline in a quoted name; fix: close the quote on the same line"
                    )
                if ch == '"':
                    if text.startswith('""', i):
                        buf.append('"')
                        i += 2
                        continue
                    i += 1
                    break
                buf.append(ch)
                i += 1
            tokens.append(Token("name", "".join(buf), start))
        elif c == "{":
            start = line
            i += 1
            while i < n and text[i] in _SPACE:
                i += 1
            end = text.find("}", i)
            if end < 0:
                raise InputError(
                    f"{path}:{start}: unterminated SQL block; fix: close it with }} (an SQL "
                    "block cannot hold a }, isolationtester ends it at the first one)"
                )
            body = text[i:end].rstrip(_SPACE)
            line += text.count("\n", i, end)
            tokens.append(Token("sql", body, start))
            i = end + 1
        elif c.isascii() and c.isdigit():
            j = i
            while j < n and text[j].isascii() and text[j].isdigit():
                j += 1
            tokens.append(Token("int", text[i:j], line))
            i = j
        elif _ident_start(c):
            j = i + 1
            while j < n and _ident_char(text[j]):
                j += 1
            word = text[i:j]
            tokens.append(Token(word if word in KEYWORDS else "name", word, line))
            i = j
        elif c in _PUNCT:
            tokens.append(Token(c, c, line))
            i += 1
        else:
            raise InputError(
                f"{path}:{line}: unexpected character {c!r}; fix: names are identifiers or "
                '"quoted", SQL goes inside { }'
            )
    tokens.append(Token("end", "", line))
    return tokens
