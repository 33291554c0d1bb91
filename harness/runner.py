"""Running scenario files: load them all, then run each under each store it names."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from racesim.checks.invariants import Checker
from racesim.engine.loop import Options, Outcome, execute
from racesim.engine.prepare import preparer
from racesim.errors import InputError, Problem
from racesim.formats.scenario import Scenario, discover, load
from racesim.model.history import History
from racesim.model.plan import Outage, Plan
from racesim.model.verdict import Verdict, judge
from racesim.provision.databases import Databases
from racesim.provision.provide import Server, provide
from racesim.system import System


@dataclass(frozen=True)
class Result:
    scenario: Scenario
    store: str
    outcome: Outcome
    verdict: Verdict


def walk(scenario: Scenario) -> None:
    """Walk the schedule on the system's model, so a step its program never makes is
    reported before anything runs (only when a store of the scenario follows the model)."""
    system = scenario.system
    if system.model is None or not any(system.variant(s).follows_model for s in scenario.stores):
        return
    try:
        execute(scenario.plan, system.model, options=Options(compare_model=False), system=system)
    except InputError as exc:
        raise exc.at(scenario.path) from None


def load_all(paths: list[str], system: System | None = None) -> list[Scenario]:
    """Every scenario, or one InputError listing the problems of all of them.

    ``system`` is the one the command line names (None when it names none: then each
    file's ``system`` key, or the reference system, decides)."""
    files = discover(paths)
    problems: list[Problem] = []
    scenarios = []
    if not files:
        raise InputError(
            f"{' '.join(paths)}: no scenario files (*.toml) found; name a file or folder"
        )
    for f in files:
        try:
            scenario = load(f, system)
            walk(scenario)
            scenarios.append(scenario)
        except InputError as exc:
            problems += exc.items
    if problems:
        raise InputError(problems)
    return scenarios


def _restarts(scenario: Scenario) -> bool:
    return any(isinstance(e, Outage) and e.kind == "restart" for e in scenario.plan.entries)


@contextmanager
def databases(
    pg: str,
    dsn: str | None,
    system: System,
    say: Callable[[str], None] | None = None,
) -> Iterator[Databases]:
    """A PostgreSQL with fresh databases prepared for ``system``, cleaned up on exit.

    ``say`` gets the server's notes (e.g. a setting the DSN's role may not change).
    """
    with provide(pg, dsn) as server, Databases(server, preparer(system)) as dbs:
        if say is not None:
            for note in server.notes:
                say(note)
        yield dbs


class Prepared:
    """Fresh databases on one server, one template per system, each made on first use."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self._made: dict[int, tuple[System, Databases]] = {}

    def for_system(self, system: System) -> Databases:
        made = self._made.get(id(system))
        if made is None:
            made = self._made[id(system)] = (system, Databases(self.server, preparer(system)))
        return made[1]

    def close(self) -> None:
        for _, dbs in self._made.values():
            dbs.close()
        self._made.clear()


@contextmanager
def prepared(
    pg: str = "auto", dsn: str | None = None, say: Callable[[str], None] | None = None
) -> Iterator[Prepared]:
    """A PostgreSQL with fresh databases for any system, cleaned up on exit.

    ``say`` gets the server's notes, as for :func:`databases`.
    """
    with provide(pg, dsn) as server:
        if say is not None:
            for note in server.notes:
                say(note)
        made = Prepared(server)
        try:
            yield made
        finally:
            made.close()


def run_plan(
    plan: Plan,
    store: str,
    dbs: Databases | None,
    options: Options,
    name: str = "",
    *,
    system: System,
) -> Outcome:
    """Run ``plan`` on ``store`` of ``system``, on a fresh database of its own (none in
    memory)."""
    if not system.variant(store).database or dbs is None:
        return execute(plan, store, None, options, name, system=system)
    db = dbs.create()
    try:
        return execute(
            plan,
            store,
            dbs.server.conninfo(db),
            options,
            name,
            restart_server=dbs.server.restart,
            system=system,
        )
    finally:
        dbs.drop(db)


def run_one(scenario: Scenario, store: str, dbs: Databases | None, options: Options) -> Result:
    """Run one scenario on one store, on a fresh database of its own."""
    system = scenario.system
    database = system.variant(store).database
    if database and dbs is not None and dbs.server.restart is None and _restarts(scenario):
        why = "skipped: 'restart server' needs racesim's own local cluster, not --dsn"
        empty = Outcome(History(scenario.path, store, system.show), Checker())
        return Result(scenario, store, empty, Verdict(True, why, (), skipped=True))
    try:
        outcome = run_plan(scenario.plan, store, dbs, options, scenario.path, system=system)
    except InputError as exc:
        raise exc.at(scenario.path) from None
    return Result(scenario, store, outcome, judge(outcome, scenario.expect.get(store)))
