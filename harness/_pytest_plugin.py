"""racesim's pytest plugin (entry point ``pytest11: racesim``): race tests of your own.

Fixtures (all prefixed ``racesim_`` except ``race``, so they never clash with a
project's own ``conn`` or ``databases``):

``racesim_server``    (session) a PostgreSQL, provisioned as ``racesim`` does it;
``racesim_databases`` (session) fresh prepared databases cloned from a template;
``racesim_db``        a fresh database for this test; its conninfo;
``racesim_empty_db``  a fresh database with nothing in it (for a schema of your own;
                      ``racesim.testing.database(load)`` makes one with it loaded);
``race``              run a scenario file or a ``Plan``; returns a :class:`Race`.

Options (each also an ini key, then an environment variable): ``--racesim-dsn`` /
``racesim_dsn`` / ``RACESIM_DSN``, ``--racesim-seed`` / ``racesim_seed`` /
``RACESIM_SEED``, ``--racesim-profile`` / ``racesim_profile`` / ``HYPOTHESIS_PROFILE``,
``--racesim-pg-version`` / ``racesim_pg_version`` / ``RACESIM_PG_VERSION``.
Works under ``pytest -n auto``: each worker has its own server or databases.

Example::

    def test_t0_t4(race):
        result = race("scenarios/t0-t4-cron-wipes-user.toml", store="legacy")
        assert result.verdict.matches
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

# Import-light on purpose: pytest loads this plugin into every test run of every
# project that installs racesim, so racesim's engine, psycopg and Hypothesis are
# imported only when a racesim fixture is used.
from racesim.config import Resolved
from racesim.config import resolve as resolve_setting
from racesim.testing import Templates, database

if TYPE_CHECKING:
    from racesim.engine.loop import Outcome
    from racesim.model.plan import Plan
    from racesim.model.verdict import Verdict
    from racesim.provision.databases import Databases
    from racesim.provision.provide import Server
    from racesim.runner import Prepared
    from racesim.system import System

__all__ = ["Race"]


@dataclass(frozen=True)
class Race:
    """What ``race(...)`` returns: the run's history and checks, and the verdict."""

    store: str
    outcome: Outcome
    verdict: Verdict


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise pytest.UsageError(f"--racesim-seed: expected a whole number, got {text!r}") from None
    if value < 0:
        raise pytest.UsageError(f"--racesim-seed: expected 0 or more, got {value}")
    return value


def _profile(text: str) -> str:
    from racesim.explore.profiles import PROFILES

    if text not in PROFILES:
        raise pytest.UsageError(
            f"--racesim-profile: expected one of {', '.join(PROFILES)}, got {text!r}"
        )
    return text


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("racesim", "racesim race tests")
    group.addoption("--racesim-dsn", help="PostgreSQL to use (default: a throwaway cluster)")
    group.addoption("--racesim-seed", type=_seed, help="seed for explorations (default 0)")
    group.addoption("--racesim-profile", type=_profile, help="Hypothesis profile: dev, ci, nightly")
    group.addoption(
        "--racesim-pg-version",
        help="PostgreSQL major version of the throwaway cluster, e.g. 15 or 18",
    )
    parser.addini("racesim_dsn", "PostgreSQL to use for racesim fixtures", default="")
    parser.addini("racesim_seed", "seed for racesim explorations", default="")
    parser.addini("racesim_profile", "Hypothesis profile for racesim", default="")
    parser.addini("racesim_pg_version", "PostgreSQL major version for racesim", default="")


def _resolved(config: pytest.Config, name: str) -> Resolved:
    """The setting from ``--racesim-NAME``, else the ini key, else its ``RACESIM_*``
    variable, else the default: ``racesim.config``'s order, as for the command."""
    cli = config.getoption(f"--racesim-{name.replace('_', '-')}")
    ini = config.getini(f"racesim_{name}")
    return resolve_setting(name, cli=None if cli is None else str(cli), ini=str(ini or ""))


def _setting(config: pytest.Config, name: str) -> str:
    return _resolved(config, name).value or ""


def pytest_configure(config: pytest.Config) -> None:
    profile = _resolved(config, "profile")
    if profile.origin != "default" and profile.value:
        _profile(profile.value)
        os.environ.setdefault("HYPOTHESIS_PROFILE", profile.value)
    _seed(_setting(config, "seed") or "0")


@pytest.fixture(scope="session")
def racesim_seed(request: pytest.FixtureRequest) -> int:
    """The seed given by ``--racesim-seed`` or the ini key (0 by default)."""
    return _seed(_setting(request.config, "seed") or "0")


@pytest.fixture(scope="session")
def racesim_server(request: pytest.FixtureRequest) -> Iterator[Server]:
    """A PostgreSQL for this test process (same provisioning as the racesim command)."""
    from racesim.errors import RacesimError
    from racesim.provision.provide import mask_dsn, provide

    found = _resolved(request.config, "dsn")
    origin = "--racesim-dsn" if found.origin == "--dsn" else found.origin
    version = _resolved(request.config, "pg_version")
    with ExitStack() as stack:
        try:
            server = stack.enter_context(
                provide(
                    "auto",
                    found.value or None,
                    origin=origin,
                    version=version.value,
                    version_origin=(
                        "--racesim-pg-version"
                        if version.origin == "--pg-version"
                        else version.origin
                    ),
                )
            )
        except RacesimError as exc:
            # No traceback: its frames would show the DSN, password and all, as arguments.
            message = f"racesim: {mask_dsn(str(exc))}"
        else:
            for note in server.notes:
                warnings.warn(pytest.PytestWarning(note), stacklevel=1)
            yield server
            return
    pytest.fail(message, pytrace=False)


@pytest.fixture(scope="session")
def racesim_databases(racesim_server: Server) -> Iterator[Databases]:
    """Fresh databases prepared for the reference system, cloned from one template per
    test process."""
    from racesim.engine.prepare import preparer
    from racesim.provision.databases import Databases
    from racesim.system import DEFAULT_SYSTEM, resolve

    reference = resolve(DEFAULT_SYSTEM)
    with Databases(racesim_server, preparer(reference), label="racesim_plugin") as dbs:
        yield dbs


@pytest.fixture
def racesim_db(racesim_databases: Databases) -> Iterator[str]:
    """The conninfo of a fresh database for this test, dropped afterwards."""
    name = racesim_databases.create()
    yield racesim_databases.server.conninfo(name)
    racesim_databases.drop(name)


RaceRunner = Callable[..., Race]


@pytest.fixture(scope="session")
def racesim_prepared(racesim_server: Server) -> Iterator[Prepared]:
    """Fresh databases for systems other than the reference one, one template each."""
    from racesim.runner import Prepared

    made = Prepared(racesim_server)
    yield made
    made.close()


@pytest.fixture
def race(racesim_databases: Databases, racesim_prepared: Prepared) -> RaceRunner:
    """Run a scenario file (path) or a ``Plan``, each call on a fresh database.

    ``race(path, store=None)`` runs the scenario on ``store`` (default: the first
    store it names) and judges it against the file's expectation;
    ``race(plan, store=None)`` runs a plan (default: the system's first store) and
    judges it against "holds". ``system`` is a ``System``, an installed system's
    name or ``package.module:attribute`` (default: the scenario's ``system`` key,
    else the reference system).
    """
    from racesim.engine.loop import Options
    from racesim.formats.scenario import Expectation, load
    from racesim.model.plan import Plan
    from racesim.model.verdict import judge
    from racesim.runner import run_plan
    from racesim.system import DEFAULT_SYSTEM, loaded, resolve

    def run(
        target: str | Path | Plan,
        store: str | None = None,
        stop_at_first: bool = False,
        system: System | str | None = None,
    ) -> Race:
        expected: Expectation | None = None
        if isinstance(target, Plan):
            found = resolve(DEFAULT_SYSTEM if system is None else system)
            plan, chosen = target, store or found.variant_names[0]
            found.variant(chosen)  # an unknown store is refused before anything runs
        else:
            scenario = load(target, system)
            found = scenario.system
            chosen = store or scenario.stores[0]
            plan, expected = scenario.plan, scenario.expect.get(chosen)
        reference = found is loaded(DEFAULT_SYSTEM)
        dbs = racesim_databases if reference else racesim_prepared.for_system(found)
        options = Options(stop_at_first=stop_at_first)
        outcome = run_plan(plan, chosen, dbs, options, system=found)
        return Race(chosen, outcome, judge(outcome, expected))

    return run


@pytest.fixture(scope="session")
def racesim_templates(
    request: pytest.FixtureRequest, racesim_server: Server
) -> Iterator[Templates]:
    """The templates ``racesim.testing.database`` fixtures clone from, one per load list."""
    templates = Templates(racesim_server, request.config.rootpath)
    yield templates
    templates.close()


racesim_empty_db = database()
"""A fresh empty database per test (racesim's clock schema aside); its conninfo."""
