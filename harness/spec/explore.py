"""Exploring a spec: interleavings beyond its permutation lines, checked by SQL invariants.

``racesim explore FILE.spec`` runs its hypothesis and pct strategies through racesim's
explorer on the spec's system (:mod:`racesim.cli.spec_system`); the exhaustive one,
with its reduction to one interleaving per class of reorderings, is :class:`Search`
below, through the isolationtester-faithful runner. Both save a counterexample with
:func:`spec_text`.

Invariants are SQL queries that return no rows while they hold
(:mod:`racesim.spec.invariants`). After every step of an interleaving (and once all its steps completed) each query
runs on the control connection, which sees what the sessions committed. A
violation counts only if the same interleaving shows it again; otherwise it is
reported as flaky with both outcomes. A confirmed one is shrunk (steps dropped
while it still breaks, twice in a row) and written as a ``.spec`` whose one
permutation is the shrunk interleaving, followed by a step of an extra session
``racesim_check`` that runs the broken invariant, so isolationtester itself prints
the offending rows.

Example::

    invariants = load_invariants(Path("seats.spec.toml"))
    search = Search(spec, invariants)
    finding = search.run(conninfo)
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from psycopg import pq
from psycopg.pq.abc import PGconn

from racesim.errors import InputError
from racesim.model.history import Event
from racesim.spec import readonly
from racesim.spec.footprints import conflict, footprints
from racesim.spec.invariants import Invariant, companion, invariant_failed, load_invariants
from racesim.spec.parse import Permutation, Spec
from racesim.spec.run import InvalidPermutation, Runner, Sink
from racesim.spec.written import Writer, ident
from racesim.system import Footprint

__all__ = [
    "CHECK_SESSION",
    "Broken",
    "Finding",
    "Flaky",
    "Invariant",
    "Outcome",
    "Search",
    "Sent",
    "companion",
    "first_broken",
    "load_invariants",
    "permutation_steps",
    "sent_steps",
    "spec_text",
]

CHECK_SESSION = "racesim_check"
_SENDS = ("step", "wait")
"""Events at which a session of the spec's system sent a step (``wait``: sent, and
seen blocked)."""


@dataclass(frozen=True)
class Sent:
    """One step of a permutation as a saved ``.spec`` writes it."""

    session: str
    name: str
    sql: str


@dataclass(frozen=True)
class Broken:
    """The first broken invariant of a run of the spec's system: its name, after which
    sent step (an index into the run's sends) it was seen, and its first rows."""

    name: str
    at: int
    rows: tuple[str, ...]


def first_broken(events: Sequence[Event]) -> Broken | None:
    """Where the spec system's watched state (the broken invariants and their rows)
    first shows a broken invariant."""
    sends = -1
    for e in events:
        sends += e.kind in _SENDS
        state: Any = e.state
        if state:
            name, rows = state[0]
            return Broken(name, max(sends, 0), tuple(rows))
    return None


def sent_steps(spec: Spec, events: Sequence[Event]) -> list[Sent]:
    """The steps a run of the spec's system sent, in order. A spec's step keeps its name
    and SQL; a step the system added (an autocommit statement's ``NAME/begin`` and
    ``NAME/commit``) is named as a plain identifier no other step has, and holds the
    statements it sent."""
    own = {(s.name, st.name): st.sql for s in spec.sessions for st in s.steps}
    taken = {name for _session, name in own}
    out: list[Sent] = []
    for e in events:
        if e.kind not in _SENDS:
            continue
        sql = own.get((e.actor, e.call))
        if sql is not None and len(e.sent) <= 1:
            out.append(Sent(e.actor, e.call, sql))
            continue
        name = ident(e.call)
        while name in taken:
            name += "_"
        taken.add(name)
        sent = e.sent or (e.sql,)
        out.append(Sent(e.actor, name, "; ".join(q.strip().rstrip(";") for q in sent) + ";"))
    return out


def permutation_steps(spec: Spec, perm: Permutation) -> list[Sent]:
    """The spec's steps ``perm`` names, in its order."""
    of = {st.name: (s.name, st.sql) for s in spec.sessions for st in s.steps}
    return [Sent(of[p.name][0], p.name, of[p.name][1]) for p in perm.steps]


@dataclass(frozen=True)
class Outcome:
    """One run of one interleaving: the first broken invariant (if any), after which
    step (``at``, an index into the permutation; its length means "at the end"), and
    the first offending rows."""

    broken: Invariant | None = None
    at: int = 0
    rows: tuple[str, ...] = ()
    invalid: bool = False
    how_many: str = ""
    """How many rows the broken invariant returned ("3 rows", "1000 or more rows")."""


@dataclass(frozen=True)
class Finding:
    permutation: Permutation
    """The shrunk interleaving."""
    outcome: Outcome
    original: Permutation
    tried: int
    text: str
    """The .spec that reproduces it."""


@dataclass
class Flaky:
    permutation: Permutation
    first: Outcome
    second: Outcome


def interleavings(spec: Spec) -> Iterator[Permutation]:
    """Every interleaving of the sessions' steps (each session's in order), in
    isolationtester's order."""
    yield from Spec(spec.path, (), None, spec.sessions, ()).run_order()


@dataclass
class Search:
    """One exhaustive exploration of ``spec`` against ``invariants``."""

    spec: Spec
    invariants: tuple[Invariant, ...]
    max_examples: int = 1000
    step_timeout: float = 30.0
    tried: int = 0
    invalid: int = 0
    reordered: int = 0
    """(exhaustive) Interleavings skipped as reorderings of one already run."""
    flaky: list[Flaky] = field(default_factory=list)

    def run(self, conninfo: str) -> Finding | None:
        runner, outcome_box = self._runner(conninfo)
        try:
            runner.connect(conninfo)
            self._validate(runner)
            for perm in self._representatives():
                if self.tried >= self.max_examples:
                    break
                self.tried += 1
                first = self._try(runner, outcome_box, perm)
                if first.invalid:
                    self.invalid += 1
                    continue
                if first.broken is None:
                    continue
                second = self._try(runner, outcome_box, perm)
                if second.broken != first.broken:
                    self.flaky.append(Flaky(perm, first, second))
                    continue
                small, outcome = self._shrink(runner, outcome_box, perm, first)
                assert outcome.broken is not None
                steps = permutation_steps(self.spec, small)
                text = spec_text(self.spec, steps, outcome.at, outcome.broken)
                return Finding(small, outcome, perm, self.tried, text)
            return None
        finally:
            runner.close()

    def _representatives(self) -> Iterator[Permutation]:
        """One interleaving per class of reorderings of independent steps: the first in
        isolationtester's order (no step could move earlier past steps it commutes
        with to a session that comes first)."""
        prints = footprints(self.spec, self.invariants)
        session = {st.name: st.session for s in self.spec.sessions for st in s.steps}
        for perm in interleavings(self.spec):
            names = [p.name for p in perm.steps]
            if _first_of_class(names, session, prints):
                yield perm
            else:
                self.reordered += 1

    # -- machinery ------------------------------------------------------------
    def _runner(self, conninfo: str) -> tuple[Runner, list[Outcome]]:
        box: list[Outcome] = [Outcome()]
        invariants = self.invariants

        sink = Sink(io.BytesIO().write, io.BytesIO().write)
        runner = Runner(self.spec, sink, self.step_timeout, refuse_blocked=True)

        def check(control: PGconn, at: int) -> None:
            if box[0].broken is not None:
                return
            for inv in invariants:
                try:
                    answer = readonly.on_runner(runner, inv.sql, b"invariant " + inv.name.encode())
                except readonly.Failed as exc:
                    raise InputError(invariant_failed(inv, exc, self.step_timeout)) from None
                if answer.count:
                    box[0] = Outcome(inv, at, answer.rows, how_many=answer.how_many())
                    return

        runner.check = check
        return runner, box

    def _validate(self, runner: Runner) -> None:
        """Each invariant must run once the spec's setup ran: bad SQL is bad input."""
        control = runner.conns[0]
        for sql in self.spec.setups:
            runner.execute(control, sql.encode("utf-8", "surrogateescape"), b"setup")
        problems = []
        for inv in self.invariants:
            # The extended protocol runs one statement at most: nothing else runs here.
            what = b"EXPLAIN of invariant " + inv.name.encode()
            res = runner.execute(control, b"EXPLAIN " + inv.sql.encode(), what, [])
            if res is None:
                raise runner.abort(b"racesim: %s could not be sent\n" % what)
            if res.status != pq.ExecStatus.TUPLES_OK:
                message = (res.error_message or b"").decode("utf-8", "replace").strip()
                message = message or f"EXPLAIN gave {pq.ExecStatus(res.status).name}, not rows"
                problems.append(
                    f"{inv.where}: invariant {inv.name!r}: {' '.join(message.split())}; "
                    "fix: a query over the spec's tables that returns no rows while it holds"
                )
        if self.spec.teardown is not None:
            runner.execute(
                control, self.spec.teardown.encode("utf-8", "surrogateescape"), b"teardown"
            )
        if problems:
            raise InputError(problems)

    def _try(self, runner: Runner, box: list[Outcome], perm: Permutation) -> Outcome:
        box[0] = Outcome()
        try:
            runner.permutation(perm)
        except InvalidPermutation:
            return Outcome(invalid=True)
        return box[0]

    def _breaks(
        self, runner: Runner, box: list[Outcome], perm: Permutation, inv: Invariant
    ) -> Outcome | None:
        for _ in range(2):  # twice in a row, or it does not count
            outcome = self._try(runner, box, perm)
            if outcome.broken != inv:
                return None
        return outcome

    def _shrink(
        self, runner: Runner, box: list[Outcome], perm: Permutation, found: Outcome
    ) -> tuple[Permutation, Outcome]:
        assert found.broken is not None
        inv = found.broken
        # Steps after the check that saw the violation cannot matter to it.
        steps = list(perm.steps[: found.at + 1])
        best = self._breaks(runner, box, Permutation(tuple(steps)), inv)
        if best is None:
            steps, best = list(perm.steps), found
        changed = True
        while changed:
            changed = False
            for i in range(len(steps) - 1, -1, -1):
                trial = steps[:i] + steps[i + 1 :]
                if not trial:
                    continue
                outcome = self._breaks(runner, box, Permutation(tuple(trial)), inv)
                if outcome is not None:
                    steps, best, changed = trial, outcome, True
        return Permutation(tuple(steps)), best


def _first_of_class(
    names: list[str], session: dict[str, int], prints: dict[str, Footprint]
) -> bool:
    """False when some step could move earlier, past steps of other sessions it
    commutes with, in front of a step of a later session: the same class holds an
    interleaving that comes before this one in isolationtester's order."""
    for j, y in enumerate(names):
        for i in range(j - 1, -1, -1):
            x = names[i]
            if session[x] == session[y] or conflict(prints.get(x), prints.get(y)):
                break
            if session[x] > session[y]:
                return False
    return True


def spec_text(spec: Spec, steps: Sequence[Sent], at: int, broken: Invariant) -> str:
    """A .spec of ``spec``'s setup and teardown, its sessions with the ``steps`` (in
    each session's order), those steps as its one permutation, and a ``racesim_check``
    step running the broken invariant right after step ``at`` (an index into them)."""
    check = f"{CHECK_SESSION}_{ident(broken.name)}"
    w = Writer()
    w.comment(f"Found by racesim explore in {Path(spec.path).name}: invariant {broken.name}")
    w.comment(
        f"breaks after step {at + 1} of this permutation; the step {check} prints"
        " the rows that show it (none while it holds)."
    )
    w.blank()
    for sql in spec.setups:
        w.setup(sql)
    if spec.teardown is not None:
        w.teardown(spec.teardown)
    for session in spec.sessions:
        mine = [s for s in steps if s.session == session.name]
        if not mine:
            continue
        w.session(session.name)
        if session.setup is not None:
            w.setup(session.setup)
        for s in mine:
            w.step(s.name, s.sql)
        if session.teardown is not None:
            w.teardown(session.teardown)
    w.session(CHECK_SESSION)
    w.step(check, broken.sql + ";")
    order = [(s.name, "") for s in steps]
    order.insert(min(at + 1, len(order)), (check, ""))
    w.permutation(order)
    return w.text("racesim explore")
