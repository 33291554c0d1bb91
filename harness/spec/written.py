"""The one writer of the ``.spec`` files racesim makes (a run exported with
``--export-spec``, a counterexample of ``racesim explore FILE.spec``).

A :class:`Writer` is given comment lines, setup blocks, a teardown, sessions with
their steps and one permutation, and writes them in isolationtester's grammar. Before
the text is handed out it is read back: it must hold exactly the setup blocks,
sessions, steps and permutation that were written, and nothing that a name or
comment turned into grammar.

Example::

    w = Writer()
    w.comment("found by racesim")
    w.setup("CREATE TABLE t (id int);")
    w.session("s1")
    w.step("a", "INSERT INTO t VALUES (1);")
    w.permutation([("a", "")])
    text = w.text("--export-spec")
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from racesim.errors import InputError
from racesim.formats.names import escaped
from racesim.spec.parse import parse_text, quote_name, sql_block

__all__ = ["Meant", "Writer", "check", "ident"]


def ident(text: str) -> str:
    """``text`` as a plain identifier: every other character an underscore."""
    return "".join(c if c.isalnum() or c == "_" else "_" for c in text)


@dataclass(frozen=True)
class Meant:
    setups: int
    sessions: tuple[tuple[str, tuple[str, ...]], ...]
    """Each session's name and its steps' names, in order."""
    permutation: tuple[str, ...]


def check(text: str, meant: Meant, what: str) -> None:
    """InputError unless ``text`` parses to what ``meant`` describes."""
    spec = parse_text(text, "written.spec")
    got = Meant(
        len(spec.setups),
        tuple((s.name, tuple(st.name for st in s.steps)) for s in spec.sessions),
        tuple(p.name for p in spec.permutations[0].steps) if len(spec.permutations) == 1 else (),
    )
    if got != meant:
        raise InputError(
            f"{what}: the .spec racesim wrote would not hold exactly the run it records (a"
            " name in it reads as other grammar); fix: rename the sessions or steps"
        )


@dataclass
class Writer:
    """A ``.spec`` being written, top to bottom."""

    lines: list[str] = field(default_factory=list)
    setups: int = 0
    sessions: list[tuple[str, list[str]]] = field(default_factory=list)
    order: list[str] = field(default_factory=list)

    def comment(self, text: str = "") -> None:
        """A comment line (``#`` alone for ""), its control characters escaped."""
        self.lines.append(escaped(f"# {text}" if text else "#"))

    def blank(self) -> None:
        self.lines.append("")

    def _block(self, keyword: str, sql: str, what: str, fix: str, lines: bool) -> None:
        block = sql_block(sql, what, fix, lines=lines)
        self.lines.append(f"{keyword}\n{block}" if lines else f"{keyword} {block}")

    def setup(
        self, sql: str, what: str = "a setup", fix: str = "avoid } in SQL", lines: bool = False
    ) -> None:
        """A setup block: the spec's (before any session), else the last session's."""
        self._block("setup", sql, what, fix, lines)
        if not self.sessions:
            self.setups += 1

    def teardown(
        self, sql: str, what: str = "a teardown", fix: str = "avoid } in SQL", lines: bool = False
    ) -> None:
        """The teardown: the spec's (before any session), else the last session's."""
        self._block("teardown", sql, what, fix, lines)

    def session(self, name: str) -> None:
        self.lines += ["", f"session {quote_name(name)}"]
        self.sessions.append((name, []))

    def step(self, name: str, sql: str) -> None:
        """A step of the last session."""
        self.lines.append(f"step {quote_name(name)} {sql_block(sql)}")
        self.sessions[-1][1].append(name)

    def permutation(self, steps: Sequence[tuple[str, str]]) -> None:
        """The one permutation: each step's name, and the step its marker names (or "")."""
        names = [quote_name(n) + (f"({quote_name(m)})" if m else "") for n, m in steps]
        self.lines += ["", "permutation " + " ".join(names)]
        self.order = [n for n, _ in steps]

    def text(self, what: str) -> str:
        """The ``.spec``, read back first (InputError, naming ``what``, when it would not
        hold exactly what was written)."""
        text = "\n".join(self.lines) + "\n"
        meant = Meant(
            self.setups,
            tuple((n, tuple(steps)) for n, steps in self.sessions),
            tuple(self.order),
        )
        check(text, meant, what)
        return text
