"""Where a spec runs and how long a step may take, as the real isolationtester has it.

``racesim run FILE.spec --dsn DSN --in-database`` runs in the database the DSN
names, as isolationtester runs in the database of its conninfo, so a spec that
names its database (``GRANT ... ON DATABASE isolation_regression``) prints the
same. Without a ``--step-timeout``, a step is bounded as the server's version of
isolationtester bounds it: ``PGISOLATIONTIMEOUT`` seconds up to PostgreSQL 15,
twice ``PG_TEST_TIMEOUT_DEFAULT`` seconds from 16 on.
"""

from __future__ import annotations

import os
from pathlib import Path

import psycopg
import pytest
from commands import racesim
from psycopg import sql
from spec_support import Target, target, write_spec

from racesim.spec.run import step_timeout_from_env
from racesim.spec.tool import run_isolationtester

__all__ = ["target"]

DATABASE = "isolation_regression"

# Names the database it runs in, as PostgreSQL's own database-level specs do.
NAMES_ITS_DATABASE = f"""
setup {{ CREATE ROLE racesim_temp_grantee; }}
teardown
{{
  REVOKE ALL ON DATABASE {DATABASE} FROM racesim_temp_grantee;
  DROP ROLE racesim_temp_grantee;
}}
session s1
step b1 {{ BEGIN; }}
step grant1 {{ GRANT CREATE ON DATABASE {DATABASE} TO racesim_temp_grantee; }}
step c1 {{ COMMIT; }}
session s2
step see2
{{
  SELECT current_catalog = '{DATABASE}' AS here,
         has_database_privilege('racesim_temp_grantee', current_catalog, 'CREATE') AS may;
}}
permutation see2 b1 grant1 see2 c1 see2
"""

SLEEPS = """
session s1
step sleep { SELECT pg_sleep(4); }
"""
"""One step past both bounds set below (1 s, and twice 1 s)."""

BOUNDS = {"PGISOLATIONTIMEOUT": "1", "PG_TEST_TIMEOUT_DEFAULT": "1"}


def _env(**extra: str) -> dict[str, str]:
    """This environment without either step-bound variable, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in BOUNDS and k != "RACESIM_DSN"}
    return {**env, **extra}


def _databases(target: Target) -> set[str]:
    with psycopg.connect(target.dbs.server.conninfo()) as conn:
        return {row[0] for row in conn.execute("SELECT datname FROM pg_database")}


def test_in_database_runs_where_the_dsn_points_as_isolationtester_does(
    target: Target, tmp_path: Path
) -> None:
    path, _spec = write_spec(tmp_path, NAMES_ITS_DATABASE)
    server = target.dbs.server
    with psycopg.connect(server.conninfo(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(DATABASE)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))
    dsn = server.conninfo(DATABASE)
    try:
        status, reference = run_isolationtester(target.tool, dsn, path, env=_env(), timeout=120)
        assert status == 0, reference
        # Granted in its own database: seen once committed.
        assert b"ERROR" not in reference and b"\nt   |t  \n" in reference

        before = _databases(target)
        done = racesim("run", str(path), "--dsn", dsn, "--in-database", env=_env())
        assert done.returncode == 0, done.stderr
        assert done.stdout.encode() == reference
        assert _databases(target) == before  # none made, and the DSN's own kept

        # Without it racesim runs on a fresh database of its own, where the spec's
        # GRANT names a database that is not the one it runs in.
        fresh = racesim("run", str(path), "--dsn", dsn, env=_env())
        assert fresh.returncode == 0, fresh.stderr
        assert fresh.stdout.encode() != reference
        assert "\nt   |t  \n" not in fresh.stdout and "\nf   |f  \n" in fresh.stdout
    finally:
        with psycopg.connect(server.conninfo(), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(DATABASE)))


@pytest.mark.parametrize(
    ("args", "env", "says"),
    [
        ([], {}, "--in-database: runs the spec in the database --dsn names"),
        (["--pg", "local"], {}, "--in-database: --pg local starts a server of racesim's own"),
        (["--pg", "docker"], {}, "--in-database: --pg docker starts a server of racesim's own"),
    ],
)
def test_in_database_without_a_database_to_run_in_is_refused(
    tmp_path: Path, args: list[str], env: dict[str, str], says: str
) -> None:
    path, _spec = write_spec(tmp_path, SLEEPS)
    done = racesim("run", str(path), "--in-database", *args, env=_env(**env))
    assert done.returncode == 2, done.stderr
    assert says in done.stderr
    assert len(done.stderr.splitlines()) == 1 and "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "scenarios/two-users-refresh.toml", "--dsn", "host=/nowhere"],
        ["explore", "tests/specs/double-booking.spec", "--dsn", "host=/nowhere"],
        ["explore", "--store", "token", "--dsn", "host=/nowhere"],
        ["replay", "x.toml", "--dsn", "host=/nowhere"],
        ["soak", "--dsn", "host=/nowhere"],
    ],
    ids=["run-scenario", "explore-spec", "explore", "replay", "soak"],
)
def test_in_database_elsewhere_is_refused(argv: list[str]) -> None:
    root = Path(__file__).resolve().parent.parent
    argv = [str(root / a) if a.startswith(("scenarios/", "tests/")) else a for a in argv]
    done = racesim(*argv, "--in-database", env=_env())
    assert done.returncode == 2, done.stderr
    assert "--in-database applies to" in done.stderr
    assert len(done.stderr.splitlines()) == 1 and "Traceback" not in done.stderr


def test_the_default_step_bound_follows_the_servers_isolationtester(
    target: Target, tmp_path: Path
) -> None:
    path, _spec = write_spec(tmp_path, SLEEPS)
    name = target.dbs.create()
    try:
        dsn = target.dbs.server.conninfo(name)
        status, reference = run_isolationtester(
            target.tool, dsn, path, env=_env(**BOUNDS), timeout=120
        )
    finally:
        target.dbs.drop(name)
    bound = 1 if target.version <= 15 else 2  # PGISOLATIONTIMEOUT; twice PG_TEST_TIMEOUT_DEFAULT
    assert status == 0
    assert f"canceling step sleep after {bound} seconds".encode() in reference
    done = racesim("run", str(path), "--dsn", target.dbs.server.conninfo(), env=_env(**BOUNDS))
    assert done.returncode == 0, done.stderr
    assert done.stdout.encode() == reference


@pytest.mark.parametrize(
    ("version", "env", "seconds"),
    [
        (15, {}, 300.0),
        (15, {"PGISOLATIONTIMEOUT": "7"}, 7.0),
        (15, {"PG_TEST_TIMEOUT_DEFAULT": "7"}, 300.0),
        (15, {"PGISOLATIONTIMEOUT": "junk"}, 0.0),
        (14, {"PGISOLATIONTIMEOUT": " 12s"}, 12.0),
        (16, {}, 360.0),
        (16, {"PG_TEST_TIMEOUT_DEFAULT": "7"}, 14.0),
        (18, {"PGISOLATIONTIMEOUT": "7"}, 360.0),
        (18, {"PG_TEST_TIMEOUT_DEFAULT": ""}, 0.0),
    ],
)
def test_step_bound_of_each_isolationtester(
    version: int, env: dict[str, str], seconds: float
) -> None:
    assert step_timeout_from_env(version, env) == seconds
