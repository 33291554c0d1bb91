"""``import racesim``: a curated public face that costs nothing until a name is used."""

from __future__ import annotations

import subprocess
import sys

import pytest

import racesim

HEAVY = ("psycopg", "hypothesis", "racesim.engine", "racesim.store", "racesim.provision")


def test_all_lists_exactly_the_public_names() -> None:
    assert sorted(racesim.__all__) == sorted({*racesim._HOMES, "__version__"})
    assert len(set(racesim.__all__)) == len(racesim.__all__)


@pytest.mark.parametrize("name", sorted(racesim.__all__))
def test_every_public_name_resolves(name: str) -> None:
    assert getattr(racesim, name) is not None


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nonesuch'"):
        racesim.nonesuch  # noqa: B018


def test_version_is_the_installed_one() -> None:
    from importlib.metadata import version

    assert racesim.__version__ == version("racesim")


def _imported_after(code: str) -> list[str]:
    probe = f"import sys\n{code}\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return done.stdout.split()


def test_importing_racesim_imports_no_machinery() -> None:
    assert _imported_after("import racesim") == []


def test_the_pytest_plugin_is_import_light() -> None:
    # pytest loads the plugin into every test run of a project that installs racesim.
    assert _imported_after("import racesim._pytest_plugin") == []


def test_a_name_loads_its_module_on_first_use() -> None:
    assert "racesim.engine" in _imported_after("import racesim; racesim.execute")
