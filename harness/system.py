"""The one seam between racesim and what it tests: a ``System``.

racesim runs several callers of one PostgreSQL database in any interleaving and
checks after every step. Everything specific to the code under test lives in a
``System`` value, which the harness only reads and calls:

* ``prepare`` / ``Variant.prepare`` / ``Variant.reset``: a fresh database and how
  to put it back between runs;
* ``Variant.watch``: the watched state the monitor reads after every event;
* ``programs``: the callers, generators yielding one ``Call`` at a time;
* ``variants``: the stores (implementations) a plan can run against;
* ``model``: an optional in-memory variant that runs beside the others as the
  sequential model (model agreement);
* ``invariants``: checks fed the events in order, keeping their own record of
  who holds what from the results the runs saw;
* ``footprints``: what each call reads and writes, and ``invariant_reads``: what
  the invariants read (the exhaustive search's reduction);
* ``faults``: the failures a run may be given;
* ``run_kinds``, ``observers`` and ``configs``: what exploration draws runs from;
* ``windows``: time windows, so clock moves hit their boundaries;
* ``show``: how values, errors and the watched state are written.

A program only yields calls; it never knows whether a scenario file or an
explorer drives it. A store (the object a variant opens on a session) never
knows the harness exists.

Example, a complete (if tiny) system: a counter that two runs bump with a
read-then-write, which loses an update::

    def bump(ctx: RunContext) -> ProgramRun:
        n = yield Call("read")
        yield Call("write", (n + 1,))
        return "done"

    class Counter:
        def __init__(self, session: Session) -> None:
            assert session.conn is not None
            self.conn = session.conn
        def read(self) -> int:
            return self.conn.execute("SELECT n FROM counter").fetchone()[0]
        def write(self, n: int) -> None:
            self.conn.execute("UPDATE counter SET n = %s", (n,))

    class NoLostUpdate:
        def __init__(self, actors: tuple[Actor, ...]) -> None:
            self.done = 0
        def feed(self, event: Event) -> list[Violation]:
            if event.call == "write" and event.error is None:
                self.done += 1
            if event.state is not None and event.state < self.done:
                return [Violation("no-lost-update", event.seq, event.label, event.actor,
                                  (event.actor,), f"{self.done} writes, counter {event.state}")]
            return []
        def note(self) -> str:
            return ""

    COUNTER = System(
        name="counter",
        prepare=lambda conn: conn.execute(
            "CREATE TABLE IF NOT EXISTS counter (n int); INSERT INTO counter VALUES (0)"),
        variants=(Variant("naive", open=Counter,
                          reset=sql_reset("UPDATE counter SET n = 0"),
                          watch=watch_sql("SELECT n FROM counter")),),
        programs={"bump": Program(bump, calls=frozenset({"read", "write"}))},
        invariants=NoLostUpdate,
        invariant_names=("no-lost-update",),
        footprints={"read": Footprint(reads=frozenset({"n"})),
                    "write": Footprint(writes=frozenset({"n"}))},
        run_kinds=(RunKind("bump", "bump", prefix="bumper"),),
    )

The shape of these types only grows: new fields always come with defaults.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from racesim.errors import InputError
from racesim.exploring import MICROSECOND, Config, Followers, RunKind, Window
from racesim.model.history import Event, History
from racesim.model.plan import Actor
from racesim.model.show import Show
from racesim.model.violation import Violation
from racesim.program import (
    Call,
    CallKind,
    InjectedFault,
    Option,
    Program,
    ProgramRun,
    RunContext,
)
from racesim.registry import (
    GROUP,
    by_name,
    import_attribute,
    kind_of,
    registered,
    runs_code,
)
from racesim.variant import Connection, Session, Variant, sql_reset, watch_sql

# What an author of a system needs, invariants included (most are defined in
# racesim.program, racesim.variant, racesim.exploring and racesim.model, and
# re-exported here: this is where authors import them from).
__all__ = [
    "DEFAULT_SYSTEM",
    "GROUP",
    "MICROSECOND",
    "Actor",
    "Call",
    "CallKind",
    "Config",
    "Event",
    "Followers",
    "Footprint",
    "History",
    "InjectedFault",
    "Invariants",
    "Option",
    "Program",
    "ProgramRun",
    "RunContext",
    "RunKind",
    "Session",
    "Show",
    "System",
    "Variant",
    "Violation",
    "Window",
    "registered",
    "resolve",
    "spec_of",
    "sql_reset",
    "watch_sql",
]


class Invariants(Protocol):
    """The checks of one run: fed every event in order, in the order they happened.

    ``feed`` returns the violations this event reveals. ``note`` is a short label
    of what the invariants' own record says is held now, and by whom ("" for
    nothing); the timeline shows it beside the watched state after each event.
    ``holder`` is its former name: invariants that have no ``note`` still have
    their ``holder`` shown, with a DeprecationWarning, until the next release.
    """

    def feed(self, event: Event) -> list[Violation]: ...

    def note(self) -> str: ...


@dataclass(frozen=True)
class Footprint:
    """The resources a call reads and writes. Two steps of different runs commute
    when neither writes what the other reads or writes."""

    reads: frozenset[str] = frozenset()
    writes: frozenset[str] = frozenset()


def _no_problems(actors: tuple[Actor, ...]) -> list[tuple[Actor, str]]:
    return []


@dataclass(frozen=True)
class System:
    """Everything racesim knows about what it tests (see the module docstring)."""

    name: str
    variants: tuple[Variant, ...]
    programs: Mapping[str, Program]
    invariants: Callable[[tuple[Actor, ...]], Invariants]
    """Fresh checks for one run of these actors."""
    invariant_names: tuple[str, ...]
    """Every invariant name ``invariants`` can report (scenario ``[expect]`` names one)."""
    prepare: Callable[[Connection], None] = lambda conn: None
    """Bring a new, empty database to the system's schema (run once per template)."""
    model: str | None = None
    """The name of the in-memory variant that is the sequential model."""
    footprints: Mapping[str, Footprint] = field(default_factory=dict)
    """Per call name; a call without one is taken to touch everything."""
    faults: tuple[str, ...] = ()
    run_kinds: tuple[RunKind, ...] = ()
    observers: tuple[RunKind, ...] = ()
    """Runs exploration may add once each, after the drawn ones (e.g. a page polling)."""
    configs: Mapping[str, Config] = field(default_factory=dict)
    defaults: Mapping[str, str] = field(default_factory=dict)
    """The config each strategy takes without ``--config`` (by strategy name)."""
    windows: tuple[Window, ...] = ()
    show: Show = field(default_factory=Show)
    simplify: Callable[[Actor, tuple[Actor, ...]], tuple[Actor, ...]] = lambda a, actors: ()
    """Simpler runs that may stand in for ``a`` when shrinking a counterexample."""
    trigger: Callable[[Actor], str | None] = lambda actor: None
    """The run whose ``send`` this run receives, if any: a state machine starts it only
    after that send, and a shrink that drops the sender drops it too."""
    check_actors: Callable[[tuple[Actor, ...]], list[tuple[Actor, str]]] = _no_problems
    """Rules across a scenario's actors: (actor, problem and fix) for each broken one."""
    sticky: frozenset[str] = frozenset()
    """Calls that leave state on their session (session-level locks), undone between runs."""
    footprint_of: Callable[[Call], Footprint | None] | None = None
    """What one call touches, for systems whose calls differ beyond their names (a
    statement's SQL); used instead of ``footprints`` when set (None: everything)."""
    saved_actors: Callable[[tuple[Actor, ...], tuple[Event, ...]], tuple[Actor, ...]] | None = None
    """The actors as a saved counterexample writes them, given its run's events (e.g.
    with the statements each sent, for a replay to check); None keeps them as they ran."""
    direct_calls: bool = False
    """Every ``db`` call commits before it returns and waits only on locks of another
    session's open transaction: with none open, the harness runs it without the
    worker-thread handoff (faster; it cannot be seen blocked)."""
    invariant_reads: frozenset[str] | None = None
    """What ``invariants`` read: names of resources (as the footprints name them)
    whose writes they see in the watched state, and names of calls whose events
    (results, errors) they follow; None, the default, for everything. Exhaustive
    search never reorders a step the invariants can see (see
    ``racesim.explore.search``). A system made from this one by
    ``dataclasses.replace`` with other ``invariants`` but this same declaration
    gets None: the declaration was about the old invariants."""
    declared_for: tuple[Any, frozenset[str] | None] | None = field(
        default=None, repr=False, compare=False
    )
    """The invariants ``invariant_reads`` was given for (set when the system is made;
    not for users to pass)."""

    def __post_init__(self) -> None:
        given = self.declared_for
        if given is None or self.invariant_reads is not given[1]:
            object.__setattr__(self, "declared_for", (self.invariants, self.invariant_reads))

    def reads(self) -> frozenset[str] | None:
        """What the invariants read (``invariant_reads``), or None for everything:
        always None when the invariants were replaced but the declaration was not."""
        assert self.declared_for is not None
        invariants, _ = self.declared_for
        return self.invariant_reads if invariants is self.invariants else None

    def variant(self, name: str) -> Variant:
        """The variant called ``name``; InputError naming the choices otherwise."""
        for v in self.variants:
            if v.name == name:
                return v
        raise InputError(
            f"unknown store {name[:40]!r} for system {self.name}; choose from"
            f" {', '.join(self.variant_names)}"
        )

    @property
    def variant_names(self) -> tuple[str, ...]:
        return tuple(v.name for v in self.variants)

    def footprint(self, call: str, made: Call | None = None) -> Footprint | None:
        """What ``call`` touches (``made``, the call itself, when the system's
        ``footprint_of`` judges calls one by one); None when unknown (then it
        conflicts with everything)."""
        if self.footprint_of is not None:
            return self.footprint_of(made) if made is not None else None
        return self.footprints.get(call)

    def config(self, name: str | None, strategy: str) -> Config:
        """The configuration ``name`` (or the strategy's default); InputError if unknown."""
        if name is None:
            name = self.defaults.get(strategy)
            if name is None:
                return Config(kinds=self.run_kinds, observers=self.observers)
        if name not in self.configs:
            raise InputError(
                f"--config: expected one of {', '.join(self.configs) or '(none)'} for system"
                f" {self.name}, got {name[:60]!r}"
            )
        return self.configs[name]


DEFAULT_SYSTEM = "racesim.store.system:SYSTEM"
"""The reference system: what the command line, the pytest plugin and a scenario
file without ``system =`` mean when they name no system. Each of those resolves it
itself; nothing beneath them has a default system."""


def resolve(spec: System | str, *, where: str = "--system") -> System:
    """A system from a value, an installed system's name (entry point group
    ``racesim.systems``), ``package.module:attribute``, or a name with an installed
    prefix (``spec:FILE.spec``, ``commands:FILE.toml``: entry point group
    ``racesim.system_kinds``).

    ``package.module`` is imported with the current directory searched first (as
    uvicorn and gunicorn do), so a module of the project racesim runs in is found
    without installing it. ``where`` starts every error message (the option, or a
    scenario file's ``path:line: system``).

    >>> resolve("reference").name  # doctest: +SKIP
    'reference'
    """
    if isinstance(spec, System):
        return spec
    asked = spec.strip()
    kind = kind_of(asked)
    if kind is not None:
        made = kind.from_name(asked)
        if not isinstance(made, System):
            raise InputError(f"{where}: {asked[:80]!r} made a {type(made).__name__}, not a System")
        _FOUND.setdefault(id(made), (made, made.name))
        return made
    named = ":" in asked
    text = asked if named else by_name(asked, where)
    # An installed system is imported as installed; a named module may be the project's.
    found = import_attribute(text, where, here=named)
    if not isinstance(found, System):
        raise InputError(f"{where}: {text[:80]!r} is a {type(found).__name__}, not a System")
    _FOUND.setdefault(id(found), (found, asked))
    return found


def imports_code(text: str) -> bool:
    """Whether ``text`` (a scenario file's ``system =``) names code to run that no
    installed system registers: only the command line or the caller may have such a
    module imported, never a data file on its own."""
    asked = text.strip()
    kind = kind_of(asked)
    if kind is not None:
        return runs_code(kind)
    if ":" not in asked:
        return False
    return asked not in registered().values()


def loaded(text: str) -> System | None:
    """The system ``package.module:attribute`` names if that module is already
    imported (nothing is imported here); None otherwise. A prefixed name
    (``commands:FILE.toml``) gives the system already made from it, if any."""
    kind = kind_of(text.strip())
    if kind is not None:
        made: Callable[[str], System | None] | None = getattr(kind, "made", None)
        return made(text.strip()) if made is not None else None
    module, _, attr = text.strip().partition(":")
    found = getattr(sys.modules.get(module), attr, None)
    return found if isinstance(found, System) else None


_FOUND: dict[int, tuple[System, str]] = {}
"""Systems ``resolve`` has loaded, with the spec they were first asked for by."""


def spec_of(system: System) -> str:
    """How a scenario file names ``system`` (its ``system =`` value); "" for the
    reference system, which a file without ``system =`` runs.

    The spec it was resolved by, else an installed name or a module attribute
    bound to it; "" when none is known.
    """
    if loaded(DEFAULT_SYSTEM) is system:
        return ""
    known = _FOUND.get(id(system))
    if known is not None and known[0] is system and known[1]:
        return known[1]
    if registered().get(system.name):
        with contextlib.suppress(InputError):
            if resolve(system.name) is system:
                return system.name
    for name, module in list(sys.modules.items()):
        for attr, value in list(vars(module).items()) if module is not None else ():
            if value is system and not attr.startswith("_"):
                return f"{name}:{attr}"
    return ""
