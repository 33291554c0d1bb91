"""``racesim bench spec``: the in-process figure and, with ``--per-process``, each spec
as a program of its own against createdb + isolationtester + dropdb."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from spec_support import SPECS, need_shared

from racesim.bench import spec as bench_spec
from racesim.cli.main import main


@pytest.fixture
def few(tmp_path: Path) -> Path:
    need_shared()
    for name in ("nowait", "deadlock-simple"):
        shutil.copy(next(p for p in SPECS if p.stem == name), tmp_path)
    return tmp_path


def test_per_process_figure_runs_each_spec_as_a_program(few: Path) -> None:
    lines = bench_spec.run("local", repeat=1, folder=str(few), per_process=True)
    assert any("one process per spec" in line for line in lines)
    assert any("byte-compiled as installed" in line for line in lines)
    rows = [line for line in lines if line.split()[:1] in (["nowait"], ["deadlock-simple"])]
    assert len(rows) == 2 and all(row.endswith("same") for row in rows)
    # reference, racesim, ratio, and racesim's in-process time beside them
    assert all(len(row.split()) == 9 and row.split()[7] == "ms" for row in rows)
    total, in_process = lines[-2:]
    assert "outputs identical on every spec" in total
    assert "ratio" in total and "target <= 1.0" in total
    assert in_process.startswith("racesim in process: ") and "ms a spec" in in_process


def test_racesim_programs_start_from_bytecode(few: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An environment that forbids writing bytecode still gets racesim as installed:
    the programs the benchmark starts read and write theirs in a scratch folder."""
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    seen: list[dict[str, str]] = []
    real = bench_spec._racesim_process

    def spy(path: Path, env: dict[str, str]) -> tuple[float, bytes]:
        seen.append(dict(env))
        folder = Path(env["PYTHONPYCACHEPREFIX"])
        result = real(path, env)
        assert any(folder.rglob("spec/run*.pyc"))
        return result

    monkeypatch.setattr(bench_spec, "_racesim_process", spy)
    bench_spec.run("local", repeat=1, folder=str(few), per_process=True)
    assert seen and all("PYTHONDONTWRITEBYTECODE" not in env for env in seen)
    assert not Path(seen[0]["PYTHONPYCACHEPREFIX"]).exists()  # removed afterwards


def test_in_process_figure_is_still_the_default(few: Path) -> None:
    lines = bench_spec.run("local", repeat=1, folder=str(few))
    assert "target <= 0.7" in lines[-1] and "identical on every spec" in lines[-1]


def test_per_process_outside_bench_spec_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "engine", "--per-process"]) == 2
    err = capsys.readouterr().err
    assert "--per-process: only bench spec" in err and len(err.strip().splitlines()) == 1


def test_in_process_rows_drop_as_racesim_run_drops() -> None:
    from racesim.cli import spec as cli_spec

    assert bench_spec.SETTLE == cli_spec.SETTLE


def test_a_dsn_password_from_the_environment_reaches_the_programs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A DSN without a password (libpq found it in PGPASSWORD) still gets one to
    createdb, isolationtester and racesim, which would otherwise wait at a prompt."""
    from racesim.provision.provide import Server

    monkeypatch.setenv("PGPASSWORD", "from-the-environment")
    monkeypatch.setenv("PGOPTIONS", "-c work_mem=1MB")  # any other PG variable: replaced
    given = Server("dsn", {"host": "/run/pg", "port": "5432", "user": "u", "dbname": "d"}, 15)
    env = bench_spec._server_env(given)
    assert env["PGPASSWORD"] == "from-the-environment"
    assert "PGOPTIONS" not in env and env["PGHOST"] == "/run/pg"
    own = Server("dsn", {**given.params, "password": "in-the-dsn"}, 15)
    assert bench_spec._server_env(own)["PGPASSWORD"] == "in-the-dsn"
