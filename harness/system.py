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
        def holder(self) -> str:
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
import importlib
import os
import re
import sys
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from importlib import metadata
from typing import Any, Literal, Protocol

import psycopg

from racesim.errors import InputError
from racesim.model.history import Event, History
from racesim.model.plan import Actor
from racesim.model.show import Show
from racesim.model.violation import Violation

# What an author of a system needs, invariants included (Event, History and
# Violation are defined elsewhere and re-exported here).
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

Connection = psycopg.Connection[Any]

CallKind = Literal["db", "sql", "work", "send", "receive", "crash"]
"""What a call is, which is all the harness needs to know to carry it out:

``db``       a method of the run's store (``getattr(store, call.name)(*call.args)``);
``sql``      one fixed statement (``call.sql``) on the run's own session; the only
             kind that may leave a transaction open;
``work``     work without database calls; a step of its own so a schedule can
             place other steps "during" it;
``send``     hand ``call.args[0]`` on: it goes into the sending run's mailbox;
``receive``  take what the run named in ``call.args[0]`` sent (None if nothing yet);
``crash``    the run's process dies here: its session closes, nothing after runs.
"""


@dataclass(frozen=True)
class Call:
    """One step of a program: what it asks for next."""

    name: str
    args: tuple[Any, ...] = ()
    kind: CallKind = "db"
    sql: str = ""
    fault: str = ""
    """When set, the call fails with ``InjectedFault(fault)`` instead of running."""


class InjectedFault(RuntimeError):
    """A failure a run was given (a call with ``fault`` set raises it at its ``yield``)."""


ProgramRun = Generator[Call, Any, str]
"""A running program: yields calls, is sent each call's result (or has its exception
thrown in at the ``yield``), and returns the run's final answer as a short string."""


@dataclass(frozen=True)
class RunContext:
    """What one run of a program knows about itself."""

    actor: str
    variant: str
    options: Mapping[str, Any] = field(default_factory=dict)
    faults: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Option:
    """An actor option a program reads: how to check a value and what to write instead."""

    check: Callable[[Any], bool]
    help: str
    """The fix, e.g. ``use "sync" or "async"``."""


@dataclass(frozen=True)
class Program:
    """A caller: how to start a run of it, and what a scenario may say about it."""

    make: Callable[[RunContext], ProgramRun]
    calls: frozenset[str]
    """Every call name the program can yield (schedule steps are checked against it)."""
    options: Mapping[str, Option] = field(default_factory=dict)
    faults: frozenset[str] = frozenset()
    """The faults a run of this program can meet."""


@dataclass(frozen=True)
class Session:
    """What a variant's ``open`` gets for one run."""

    conn: Connection | None
    """The run's own autocommit session (None for an in-memory variant)."""
    world: Any
    """The run's shared in-memory state (``Variant.world``), or None."""
    seed: int
    """A seed of this run's own: the same plan seed and actor give the same value."""
    actor: str = ""
    """The run's actor name (a store may stamp its rows with it)."""
    program: str = ""
    """The program the run runs (a command's store starts that program's command)."""


@dataclass(frozen=True)
class Variant:
    """One implementation (a store) a plan can run against.

    ``open`` makes the object whose methods ``db`` calls name, for one run; if it
    has a ``close()``, the harness calls it when the run's session ends. A
    variant with ``database=False`` runs in memory: ``world`` makes the state its
    sessions share for one run (given the virtual clock's ``now``) and ``watch``
    reads that world instead of the monitor session.
    """

    name: str
    open: Callable[[Session], Any]
    watch: Callable[[Any], Any]
    """The watched state: given the monitor connection (or the world, in memory),
    return a value to record after every event (compared with ``==``)."""
    prepare: Callable[[Connection], None] | None = None
    """Bring a database prepared by ``System.prepare`` to what this variant needs."""
    reset: Callable[[Connection], None] | None = None
    """Put the state back to fresh between runs (on the monitor session)."""
    database: bool = True
    world: Callable[[Callable[[], datetime]], Any] | None = None
    follows_model: bool = False
    """Results must equal the system's model (checked beside it, and a scenario
    naming this variant is first walked on the model to check its steps)."""


class Invariants(Protocol):
    """The checks of one run: fed every event in order, in the order they happened.

    ``feed`` returns the violations this event reveals. ``holder`` names the run
    that the invariants' own record says holds the watched thing ("" for none);
    the timeline shows it beside the watched state.
    """

    def feed(self, event: Event) -> list[Violation]: ...

    def holder(self) -> str: ...


@dataclass(frozen=True)
class Footprint:
    """The resources a call reads and writes. Two steps of different runs commute
    when neither writes what the other reads or writes."""

    reads: frozenset[str] = frozenset()
    writes: frozenset[str] = frozenset()


@dataclass(frozen=True)
class RunKind:
    """A kind of run exploration may draw: ``program`` with ``options``, named
    ``prefix``, ``prefix2``, ...; ``faults`` are the ones exploration may give it."""

    name: str
    program: str
    prefix: str
    options: Mapping[str, Any] = field(default_factory=dict)
    faults: tuple[str, ...] = ()
    followers: Followers | None = None


@dataclass(frozen=True)
class Followers:
    """Runs started by a run's ``send`` (0 to ``most`` of them), e.g. a message's consumers.

    Follower ``i`` of run ``lead`` is named ``f"{lead}{suffix}{i}"`` and gets the
    option ``link = lead`` (its program receives from the run that option names).
    """

    kind: RunKind
    most: int
    link: str
    suffix: str = "-"


@dataclass(frozen=True)
class Config:
    """A named configuration for exploration.

    Either fixed ``actors`` (every strategy runs exactly these; ``faults`` lists,
    per actor, faults a state machine may add), or ``kinds`` to draw up to
    ``max_runs`` runs from (plus each of ``observers`` or not). Strategies that
    need fixed runs (exhaustive, PCT) take a drawn configuration's ``roster()``.
    """

    description: str = ""
    actors: tuple[Actor, ...] = ()
    kinds: tuple[RunKind, ...] = ()
    observers: tuple[RunKind, ...] = ()
    max_runs: int = 4
    faults: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    clock: bool = True
    """Exploration may move the clock."""

    def roster(self) -> tuple[Actor, ...]:
        """The fixed runs: ``actors``, else one run of each kind with its most followers."""
        if self.actors:
            return self.actors
        out: list[Actor] = []
        for kind in (*self.kinds, *self.observers):
            name = kind.prefix if all(a.name != kind.prefix for a in out) else f"{kind.prefix}2"
            out.append(Actor(name, kind.program, dict(kind.options)))
            f = kind.followers
            for i in range(f.most if f else 0):
                assert f is not None
                out.append(
                    Actor(
                        f"{name}{f.suffix}{i + 1}",
                        f.kind.program,
                        {**f.kind.options, f.link: name},
                    )
                )
        return tuple(out)


MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True)
class Window:
    """A time window of the system, e.g. "a marker older than 5 minutes is stale".

    Exploration moves the clock past it (``length`` plus a minute) and to its
    exact boundary and one microsecond either side. With ``since`` (the window's
    start read from the watched state, or None), a boundary move lands the next
    step exactly at ``since + length`` (± 1 µs); without it, the move is
    ``length`` (± 1 µs) itself.
    """

    length: timedelta
    since: Callable[[Any], datetime | None] | None = None
    name: str = ""

    def offsets(self) -> tuple[timedelta, ...]:
        """The boundary and one microsecond either side."""
        return (-MICROSECOND, timedelta(0), MICROSECOND)


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


def watch_sql(
    query: str, shape: Callable[[tuple[Any, ...] | None], Any] = lambda row: row
) -> Callable[[Any], Any]:
    """A ``Variant.watch`` that runs ``query`` on the monitor and shapes its first row."""

    def watch(conn: Connection) -> Any:
        return shape(conn.execute(query).fetchone())

    return watch


def sql_reset(statements: str) -> Callable[[Connection], None]:
    """A ``Variant.reset`` that runs fixed SQL (several statements may be ``;``-joined)."""

    def reset(conn: Connection) -> None:
        conn.execute(statements)

    return reset


DEFAULT_SYSTEM = "racesim.store.system:SYSTEM"
"""The reference system, used when none is named."""


GROUP = "racesim.systems"
"""The entry point group installed systems register under, by name."""

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


KINDS = "racesim.system_kinds"
"""The entry point group of systems a prefix names (``spec:FILE.spec``,
``commands:FILE.toml``): the entry point's name is the prefix, its value a module
with ``from_name(text) -> System`` and, optionally, ``made(text) -> System | None``
(the system ``text`` names if it has been made already)."""


class Kind(Protocol):
    """A module of the ``racesim.system_kinds`` group."""

    def from_name(self, text: str) -> System: ...


def _kind(text: str) -> Kind | None:
    """The system kind ``text``'s prefix names, if one is installed."""
    prefix, sep, _ = text.partition(":")
    if not sep or not prefix.isidentifier():
        return None
    for ep in metadata.entry_points(group=KINDS, name=prefix):
        kind: Kind = ep.load()
        return kind
    return None


def registered() -> dict[str, str]:
    """Installed systems: entry point name -> ``package.module:attribute``.

    A name two distributions register differently maps to the first; ``resolve``
    refuses it.
    """
    found: dict[str, str] = {}
    for ep in metadata.entry_points(group=GROUP):
        found.setdefault(ep.name, ep.value)
    return found


def _by_name(name: str, where: str) -> str:
    if not _NAME.match(name):
        raise InputError(
            f"{where}: expected a system name or package.module:attribute, got {name[:80]!r}"
        )
    values = sorted(
        {
            (ep.value, ep.dist.name if ep.dist else "?")
            for ep in metadata.entry_points(group=GROUP)
            if ep.name == name
        },
        key=lambda pair: (pair[1], pair[0]),
    )
    if not values:
        names = ", ".join(sorted(registered())) or "(none installed)"
        raise InputError(
            f"{where}: no system named {name!r} is installed (installed: {names});"
            " name one of them, or give package.module:attribute"
        )
    if len({value for value, _ in values}) > 1:
        which = " and ".join(f"{dist} ({value})" for value, dist in values)
        raise InputError(
            f"{where}: the system name {name!r} is registered by {which};"
            " give package.module:attribute instead"
        )
    return values[0][0]


def resolve(spec: System | str | None = None, *, where: str = "--system") -> System:
    """A system from a value, an installed system's name (entry point group
    ``racesim.systems``), or ``package.module:attribute``; the reference by default.

    ``spec:FILE.spec`` is a ``.spec`` file checked by its SQL invariants (see
    ``racesim.spec.system``).

    ``package.module`` is imported with the current directory searched first (as
    uvicorn and gunicorn do), so a module of the project racesim runs in is found
    without installing it. ``where`` starts every error message (the option, or a
    scenario file's ``path:line: system``).
    """
    if isinstance(spec, System):
        return spec
    text = spec or DEFAULT_SYSTEM
    asked = text.strip()
    kind = _kind(asked)  # spec:FILE.spec, commands:FILE.toml (group racesim.system_kinds)
    if kind is not None:
        made = kind.from_name(asked)
        _FOUND.setdefault(id(made), (made, made.name))
        return made
    named = ":" in text
    if not named:
        text = _by_name(asked, where)
    module, _, attr = text.partition(":")
    if not module or not attr:
        raise InputError(f"{where}: expected package.module:attribute, got {text[:80]!r}")
    here = os.getcwd()
    if named and here not in sys.path:  # an installed system is imported as installed
        sys.path.insert(0, here)
    try:
        found = getattr(importlib.import_module(module), attr)
    except Exception as exc:  # the user's module: any failure of its import is bad input
        detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        raise InputError(
            f"{where}: cannot load {text[:80]!r} ({type(exc).__name__}: {detail});"
            " check the module is importable and defines the attribute"
        ) from None
    if not isinstance(found, System):
        raise InputError(f"{where}: {text[:80]!r} is a {type(found).__name__}, not a System")
    _FOUND.setdefault(id(found), (found, "" if spec is None else asked))
    return found


def imports_code(text: str) -> bool:
    """Whether ``text`` (a scenario file's ``system =``) names a module to import
    that no installed system registers: only the command line or the caller may
    have such a module imported, never a data file on its own."""
    asked = text.strip()
    if asked.startswith("spec:") or ":" not in asked:
        return False
    return asked not in registered().values()


def loaded(text: str) -> System | None:
    """The system ``package.module:attribute`` names if that module is already
    imported (nothing is imported here); None otherwise. ``commands:FILE.toml``
    names the commands system already made from that file, if any."""
    kind = _kind(text.strip())
    if kind is not None:
        made: Callable[[str], System | None] | None = getattr(kind, "made", None)
        return made(text.strip()) if made is not None else None
    module, _, attr = text.strip().partition(":")
    found = getattr(sys.modules.get(module), attr, None)
    return found if isinstance(found, System) else None


_FOUND: dict[int, tuple[System, str]] = {}
"""Systems ``resolve`` has loaded, with the spec they were first asked for by."""


def spec_of(system: System) -> str:
    """How a scenario file names ``system`` (its ``system =`` value); "" for the default.

    The spec it was resolved by, else an installed name or a module attribute
    bound to it; "" when none is known.
    """
    if system is resolve():
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
