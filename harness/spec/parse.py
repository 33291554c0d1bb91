"""Read PostgreSQL isolation test specs (``.spec`` files), as isolationtester reads them.

The grammar is isolationtester's (``specscanner.l`` / ``specparse.y``)::

    spec        := setup* [teardown SQL] session+ permutation*
    setup       := "setup" SQL
    session     := "session" NAME ["setup" SQL] step+ ["teardown" SQL]
    step        := "step" NAME SQL
    permutation := "permutation" pstep+
    pstep       := NAME ["(" marker ("," marker)* ")"]
    marker      := "*" | NAME | NAME "notices" INTEGER

``SQL`` is ``{ ... }`` (spaces and tabs, not newlines, trimmed at both ends; the
first ``}`` ends it), ``NAME`` an identifier or a ``"quoted name"`` (``""`` is a
quote), ``#`` starts a comment outside SQL. After parsing, the checks
isolationtester makes: step names unique over all sessions, every permutation step
and marker names a step (a marker one of the same permutation, of another session).
Steps no permutation uses are warnings, as isolationtester prints them.

Example::

    >>> spec = parse_text('session s1 step a { SELECT 1; } permutation a', "x.spec")
    >>> [s.name for s in spec.sessions], spec.permutations[0].steps[0].name
    (['s1'], 'a')
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from racesim.errors import InputError
from racesim.spec.scan import Token, describe, quote_name, scan, sql_block

__all__ = [
    "MAX_PERMUTATIONS",
    "MAX_SPEC_BYTES",
    "Blocker",
    "Permutation",
    "PermutationStep",
    "Session",
    "Spec",
    "Step",
    "load",
    "parse_text",
    "quote_name",
    "sql_block",
]

MAX_SPEC_BYTES = 4 * 1024 * 1024
"""Bigger files are refused: no real spec comes near it."""
MAX_PERMUTATIONS = 20_000
"""A spec without permutation lines runs every interleaving; beyond this many it is refused."""


@dataclass(frozen=True)
class Step:
    name: str
    sql: str
    session: int
    """Index of the session the step belongs to."""
    line: int


@dataclass(frozen=True)
class Session:
    name: str
    setup: str | None
    steps: tuple[Step, ...]
    teardown: str | None
    line: int


@dataclass(frozen=True)
class Blocker:
    """A step-completion marker (isolationtester calls them blockers): ``(*)``,
    ``(other)`` or ``(other notices N)``."""

    kind: Literal["once", "other", "notices"]
    step: str | None = None
    notices: int = 0
    line: int = 0

    def text(self) -> str:
        if self.kind == "once":
            return "*"
        assert self.step is not None
        name = quote_name(self.step)
        return f"{name} notices {self.notices}" if self.kind == "notices" else name


@dataclass(frozen=True)
class PermutationStep:
    name: str
    markers: tuple[Blocker, ...] = ()
    line: int = 0

    def text(self) -> str:
        name = quote_name(self.name)
        if not self.markers:
            return name
        return f"{name}({', '.join(m.text() for m in self.markers)})"


@dataclass(frozen=True)
class Permutation:
    steps: tuple[PermutationStep, ...]
    line: int = 0


@dataclass(frozen=True)
class Spec:
    path: str
    setups: tuple[str, ...]
    teardown: str | None
    sessions: tuple[Session, ...]
    permutations: tuple[Permutation, ...]
    unused: tuple[str, ...] = field(default=())
    """Steps no listed permutation uses (isolationtester warns about each)."""

    def step(self, name: str) -> Step:
        for session in self.sessions:
            for step in session.steps:
                if step.name == name:
                    return step
        raise KeyError(name)

    def count_permutations(self, limit: int | None = None) -> int:
        """How many permutations run; without permutation lines, counted only up to
        ``limit`` (``limit + 1`` when there are more)."""
        if self.permutations:
            return len(self.permutations)
        count, total = 1, 0
        for session in self.sessions:
            for i in range(1, len(session.steps) + 1):
                total += 1
                count = count * total // i  # the multinomial, one factor at a time
                if limit is not None and count > limit:
                    return limit + 1
        return count

    def run_order(self) -> Iterator[Permutation]:
        """The permutations isolationtester runs, in its order: without permutation
        lines, every interleaving of the sessions' steps, the session order of each
        in lexicographic order (a loop, so a session of any length runs)."""
        if self.permutations:
            yield from self.permutations
            return
        owners = [i for i, s in enumerate(self.sessions) for _ in s.steps]
        while True:
            taken = [0] * len(self.sessions)
            steps = []
            for i in owners:
                steps.append(PermutationStep(self.sessions[i].steps[taken[i]].name))
                taken[i] += 1
            yield Permutation(tuple(steps))
            if not _next_order(owners):
                return


def _next_order(seq: list[int]) -> bool:
    """Step ``seq`` to its next arrangement in lexicographic order; False after the last."""
    k = len(seq) - 2
    while k >= 0 and seq[k] >= seq[k + 1]:
        k -= 1
    if k < 0:
        return False
    j = len(seq) - 1
    while seq[j] <= seq[k]:
        j -= 1
    seq[k], seq[j] = seq[j], seq[k]
    seq[k + 1 :] = reversed(seq[k + 1 :])
    return True


def load(path: str | Path) -> Spec:
    """Read and check one ``.spec`` file; :class:`InputError` lists every problem."""
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_SPEC_BYTES:
            raise InputError(
                f"{p}: {size} bytes is more than a spec may hold ({MAX_SPEC_BYTES}); "
                "fix: split it into smaller specs"
            )
        data = p.read_bytes()
    except OSError as exc:
        raise InputError(f"{p}: cannot read ({exc.strerror}); fix: check the path") from None
    if b"\0" in data:
        raise InputError(f"{p}: holds a NUL byte, not a spec; fix: give a text .spec file")
    return parse_text(data.decode("utf-8", "surrogateescape"), str(p))


class _Parser:
    def __init__(self, tokens: list[Token], path: str) -> None:
        self.tokens = tokens
        self.pos = 0
        self.path = path

    def peek(self) -> Token:
        return self.tokens[self.pos]

    def take(self, kind: str, what: str) -> Token:
        tok = self.peek()
        if tok.kind != kind:
            raise InputError(
                f"{self.path}:{tok.line}: syntax error: expected {what}, found {describe(tok)}"
                f"; fix: {_FIXES.get(kind, 'see the spec grammar in docs/isolation-specs.md of racesim')}"
            )
        self.pos += 1
        return tok

    def accept(self, kind: str) -> Token | None:
        if self.peek().kind == kind:
            self.pos += 1
            return self.peek_prev()
        return None

    def peek_prev(self) -> Token:
        return self.tokens[self.pos - 1]

    def spec(self) -> tuple[list[str], str | None, list[Session], list[Permutation]]:
        setups: list[str] = []
        while self.accept("setup"):
            setups.append(self.take("sql", "an SQL block { ... } after setup").value)
        teardown = None
        if self.accept("teardown"):
            teardown = self.take("sql", "an SQL block { ... } after teardown").value
        sessions = [self.session(0)]
        while self.peek().kind == "session":
            sessions.append(self.session(len(sessions)))
        permutations: list[Permutation] = []
        while self.peek().kind == "permutation":
            permutations.append(self.permutation())
        tok = self.peek()
        if tok.kind != "end":
            expected = (
                "permutation or the end of the file"
                if permutations
                else "session, permutation or the end of the file"
            )
            self.take("end", expected)
        return setups, teardown, sessions, permutations

    def session(self, index: int) -> Session:
        line = self.take("session", "session (a spec needs at least one)").line
        name = self.take("name", "a session name").value
        setup = None
        if self.accept("setup"):
            setup = self.take("sql", "an SQL block { ... } after setup").value
        steps = [self.step(index)]
        while self.peek().kind == "step":
            steps.append(self.step(index))
        teardown = None
        if self.accept("teardown"):
            teardown = self.take("sql", "an SQL block { ... } after teardown").value
        return Session(name, setup, tuple(steps), teardown, line)

    def step(self, session: int) -> Step:
        line = self.take("step", "step (a session needs at least one)").line
        name = self.take("name", "a step name").value
        sql = self.take("sql", "the step's SQL block { ... }").value
        return Step(name, sql, session, line)

    def permutation(self) -> Permutation:
        line = self.take("permutation", "permutation").line
        steps = [self.permutation_step()]
        while self.peek().kind == "name":
            steps.append(self.permutation_step())
        return Permutation(tuple(steps), line)

    def permutation_step(self) -> PermutationStep:
        tok = self.take("name", "a step name")
        markers: list[Blocker] = []
        if self.accept("("):
            markers.append(self.marker())
            while self.accept(","):
                markers.append(self.marker())
            self.take(")", "')' or ',' in the step's markers")
        return PermutationStep(tok.value, tuple(markers), tok.line)

    def marker(self) -> Blocker:
        star = self.accept("*")
        if star:
            return Blocker("once", line=star.line)
        tok = self.take("name", "'*' or a step name in the marker")
        if self.accept("notices"):
            count = self.take("int", "a number after notices")
            return Blocker("notices", tok.value, int(count.value), tok.line)
        return Blocker("other", tok.value, line=tok.line)


_FIXES = {
    "sql": "write the SQL inside { }",
    "name": 'use an identifier or a "quoted name"',
    "int": "write the number of notices, e.g. (s1 notices 1)",
    ")": "close the markers with ), e.g. s1a(*) or s2b(s1a)",
    "end": "start each part with setup, teardown, session, step or permutation",
}


def parse_text(text: str, path: str) -> Spec:
    """Parse and check spec source ``text`` read from ``path`` (used in messages)."""
    setups, teardown, sessions, permutations = _Parser(scan(text, path), path).spec()
    unused = _check(path, sessions, permutations)
    spec = Spec(path, tuple(setups), teardown, tuple(sessions), tuple(permutations), unused)
    if not permutations and spec.count_permutations(MAX_PERMUTATIONS) > MAX_PERMUTATIONS:
        raise InputError(
            f"{path}:{sessions[0].line}: without permutation lines this spec has more than"
            f" {MAX_PERMUTATIONS} interleavings (the most racesim runs); fix: list the"
            " permutations to run"
        )
    return spec


def _check(path: str, sessions: list[Session], permutations: list[Permutation]) -> tuple[str, ...]:
    """isolationtester's checks, every problem reported; returns the unused step names."""
    problems: list[str] = []
    steps: dict[str, Step] = {}
    for session in sessions:
        for step in session.steps:
            first = steps.setdefault(step.name, step)
            if first is not step:
                problems.append(
                    f"{path}:{step.line}: duplicate step name {step.name!r} (first at line "
                    f"{first.line}); fix: step names must be unique over all sessions"
                )
    used: set[str] = set()
    for perm in permutations:
        names = {p.name for p in perm.steps}
        for pstep in perm.steps:
            found = steps.get(pstep.name)
            if found is None:
                problems.append(
                    f"{path}:{pstep.line}: undefined step {pstep.name!r} in permutation; "
                    f"fix: use one of {_names(steps)}"
                )
                continue
            step = found
            used.add(pstep.name)
            for marker in pstep.markers:
                if marker.step is None:
                    continue
                other = steps.get(marker.step)
                if other is None or marker.step not in names:
                    problems.append(
                        f"{path}:{marker.line}: marker of step {pstep.name!r} names "
                        f"{marker.step!r}, which is not a step of this permutation; fix: name "
                        "a step of another session that this permutation runs"
                    )
                elif other.session == step.session:
                    problems.append(
                        f"{path}:{marker.line}: step {pstep.name!r} cannot wait for "
                        f"{marker.step!r} of its own session; fix: name a step of another session"
                    )
    if problems:
        raise InputError(problems)
    if not permutations:
        return ()
    return tuple(sorted((n for n in steps if n not in used), key=_c_order))


def _names(steps: dict[str, Step]) -> str:
    shown = sorted(steps, key=_c_order)[:12]
    return ", ".join(shown) + (", ..." if len(steps) > 12 else "")


def _c_order(name: str) -> bytes:
    """strcmp order, as isolationtester sorts step names."""
    return name.encode("utf-8", "surrogateescape")
