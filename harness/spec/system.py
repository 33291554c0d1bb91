"""A ``.spec`` as a System: sessions are programs, steps are SQL calls, SQL invariants
are the checks. Every strategy of ``racesim explore`` (Hypothesis, exhaustive with
reduction, PCT) then applies to it as to any system, and its counterexamples replay
(``racesim replay``) and export (``--export-spec``) like any others.

* the spec's setup blocks prepare the database; between runs its teardown and then
  its setup put it back (as isolationtester does around each permutation);
* each session is a program of the same name that sends its steps in order, one
  ``sql`` call each (an error is the step's outcome and the session goes on, as in
  isolationtester); its setup runs when its session opens;
* the watched state is the rows the invariant queries return (none while they hold);
* footprints let the exhaustive search skip reorderings: a step reads or writes the
  tables its SQL names, a commit or rollback writes every table of its session, and a
  step racesim cannot read this way touches everything (see ``footprints``).

A spec's system is named ``spec:PATH`` (``spec:PATH.spec:INVARIANTS.toml`` with an
invariants file other than ``PATH.spec.toml``), which is how a saved counterexample
names it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg

from racesim.checks.invariants import FirstBroken
from racesim.engine.loop import Options
from racesim.errors import InputError
from racesim.model.plan import Actor
from racesim.spec import readonly
from racesim.spec.footprints import footprints
from racesim.spec.invariants import Invariant, companion, invariant_failed, load_invariants
from racesim.spec.parse import Session as SpecSession
from racesim.spec.parse import Spec, load
from racesim.spec.split import BEGIN, COMMIT, after, splittable
from racesim.system import (
    Call,
    Config,
    Footprint,
    Program,
    ProgramRun,
    RunContext,
    Session,
    Show,
    System,
    Variant,
)

__all__ = ["PREFIX", "SHOW", "STORE", "from_name", "spec_system"]

PREFIX = "spec:"
STORE = "spec"
"""The one variant (store) of a spec's system."""
RUNS_CODE = False
"""A spec's system is SQL and data only: a scenario file may name one on its own."""
ROWS_SHOWN = readonly.ROWS_SHOWN
WATCH_BOUND = Options.step_bound
"""Seconds an invariant query may take: the engine's bound on a step."""


class _Store:
    """A session of the spec: its setup ran when it opened."""

    def __init__(self, session: Session, spec_session: SpecSession) -> None:
        assert session.conn is not None
        if spec_session.setup is not None:
            session.conn.execute(spec_session.setup)


def _program(session: SpecSession, split: bool = True) -> Program:
    """The session's steps in order; with ``split``, each autocommit data-changing
    statement as ``BEGIN``, itself and ``COMMIT`` (see :mod:`racesim.spec.split`)."""
    steps = session.steps
    names = {s.name for s in steps}
    added = {s.name + x for s in steps for x in (BEGIN, COMMIT)} if split else set()
    split = split and not names & added  # a step already named like one would be ambiguous

    def make(ctx: RunContext) -> ProgramRun:
        inside = after(session.setup or "", False)
        for step in steps:
            apart = split and not inside and splittable(step.sql)
            if apart:
                yield Call(step.name + BEGIN, kind="sql", sql="BEGIN")
            with contextlib.suppress(psycopg.Error):  # printed as the step's result
                yield Call(step.name, kind="sql", sql=step.sql)
            if apart:  # after an error, COMMIT ends the failed transaction
                yield Call(step.name + COMMIT, kind="sql", sql="COMMIT")
            inside = after(step.sql, inside)
        return "done"

    return Program(make, calls=frozenset(names | (added if split else set())))


class _Checks(FirstBroken):
    """A violation the first time an invariant's query returns rows."""

    def broken(self, state: Any) -> Iterator[tuple[str, str]]:
        for name, rows in state or ():
            yield name, f"the query of {name} returns {'; '.join(rows)}"


def _watch(invariants: tuple[Invariant, ...]) -> Any:
    def watch(conn: psycopg.Connection[Any]) -> tuple[tuple[str, tuple[str, ...]], ...]:
        broken = []
        for inv in invariants:
            try:
                answer = readonly.on_connection(conn, inv.sql, WATCH_BOUND)
            except readonly.Failed as exc:
                raise InputError(invariant_failed(inv, exc, WATCH_BOUND)) from None
            if answer.count:
                more = (f"({answer.how_many()})",) if answer.count > len(answer.rows) else ()
                broken.append((inv.name, answer.rows + more))
        return tuple(broken)

    return watch


def _state(state: Any) -> str:
    if state is None:
        return ""
    if not state:
        return "invariants: hold"
    return "broken: " + "; ".join(f"{name} ({', '.join(rows)})" for name, rows in state)


SHOW = Show(
    state=_state,
    state_json=lambda state: None if state is None else {n: list(r) for n, r in state},
    state_key="broken",
)
"""The watched state as the invariants that are broken, with their first rows."""


def spec_system(
    spec: Spec, invariants: tuple[Invariant, ...], name: str = "", split: bool = True
) -> System:
    """The System of ``spec`` checked by ``invariants``; with ``split`` (the default),
    autocommit statements run as ``BEGIN``, the statement, ``COMMIT``."""

    def prepare(conn: psycopg.Connection[Any]) -> None:
        for sql in spec.setups:
            conn.execute(sql)

    def reset(conn: psycopg.Connection[Any]) -> None:
        if spec.teardown is not None:
            conn.execute(spec.teardown)
        prepare(conn)

    sessions = {s.name: s for s in spec.sessions}
    prints = footprints(spec, invariants)
    # A split statement's BEGIN touches nothing (a snapshot is taken by the statement
    # after it); its COMMIT step writes what the statement touched (explore/'s rule).
    prints.update({f"{name}{BEGIN}": Footprint() for name in prints if split})
    actors = tuple(Actor(s.name, s.name) for s in spec.sessions)
    config = Config(f"the sessions of {Path(spec.path).name}", actors=actors, clock=False)
    return System(
        name=name or f"{PREFIX}{spec.path}",
        variants=(
            Variant(
                STORE,
                open=lambda s: _Store(s, sessions[s.actor]),
                watch=_watch(invariants),
                reset=reset,
            ),
        ),
        programs={s.name: _program(s, split) for s in spec.sessions},
        invariants=_Checks,
        invariant_names=tuple(inv.name for inv in invariants),
        prepare=prepare,
        footprints=prints,
        invariant_reads=frozenset(f"invariant:{inv.name}" for inv in invariants),
        configs={"sessions": config},
        show=SHOW,
        defaults={"hypothesis": "sessions", "exhaustive": "sessions", "pct": "sessions"},
    )


_MADE: dict[str, System] = {}


def from_name(text: str) -> System:
    """The system ``spec:PATH[.spec:INVARIANTS]`` names (made once per name)."""
    found = _MADE.get(text)
    if found is not None:
        return found
    rest = text.removeprefix(PREFIX)
    spec_path, sep, inv_path = rest.partition(".spec:")
    spec_file = Path(spec_path + ".spec" if sep else rest)
    if spec_file.suffix != ".spec":
        raise InputError(
            f"system {text[:80]!r}: expected spec:FILE.spec or spec:FILE.spec:INVARIANTS.toml"
        )
    invariants_file = Path(inv_path) if sep else companion(spec_file)
    if not sep and spec_file.is_file() and not invariants_file.exists():
        raise InputError(
            f"{spec_file}: no invariants for its system; fix: write {invariants_file} with"
            ' [invariants] and name = "SELECT ..." lines (queries returning no rows while'
            " each holds), or name spec:FILE.spec:INVARIANTS.toml"
        )
    # Named by absolute paths, so a saved counterexample replays from anywhere.
    name = f"{PREFIX}{spec_file.resolve()}" + (f":{invariants_file.resolve()}" if sep else "")
    system = _MADE.get(name) or spec_system(load(spec_file), load_invariants(invariants_file), name)
    _MADE[text] = _MADE[name] = system
    return system
