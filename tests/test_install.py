"""Installed from a wheel, racesim adds only ``racesim`` to a user's environment.

A user's project with packages of its own named ``store`` and ``harness`` keeps
them, and racesim's plugin and command work beside them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from installed import ROOT, Installed, install

USER_STORE = 'WHO = "the project\'s own store"\n'
USER_HARNESS = 'WHO = "the project\'s own harness"\n'
USER_TESTS = f"""
import harness
import store


def test_own_packages_are_the_projects():
    assert store.WHO == "the project's own store"
    assert harness.WHO == "the project's own harness"


def test_racesim_beside_them(race):
    result = race(r"{ROOT / "scenarios" / "t0-t4-cron-wipes-user.toml"}", store="legacy")
    assert result.verdict.matches
    assert result.verdict.violations[0].invariant == "no-foreign-clear"
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    return install(tmp_path_factory.mktemp("installed"))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    for package, text in (("store", USER_STORE), ("harness", USER_HARNESS)):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text(text)
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_project.py").write_text(USER_TESTS)
    (tmp_path / "pyproject.toml").write_text('[tool.pytest.ini_options]\npythonpath = ["."]\n')
    return tmp_path


def test_only_racesim_lands_in_site_packages(installed: Installed) -> None:
    mine = {p.name for p in installed.site_packages.iterdir() if not p.name.startswith("_")}
    assert {"harness", "store"}.isdisjoint(mine)
    assert "racesim" in mine
    assert (installed.site_packages / "racesim" / "store" / "migrations").is_dir()
    for asset in ("page.css", "page.js"):  # the HTML report's, read at run time
        assert (installed.site_packages / "racesim" / "report" / asset).is_file()


def test_a_project_with_its_own_store_and_harness(installed: Installed, project: Path) -> None:
    done = installed.run(
        installed.python, "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=project
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout


def test_the_command_works_inside_that_project(installed: Installed, project: Path) -> None:
    scenario = ROOT / "scenarios" / "t0-t4-cron-wipes-user.toml"
    done = installed.run(installed.racesim, "run", scenario, "--store", "token", cwd=project)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "holds" in done.stdout
