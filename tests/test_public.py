"""``import racesim``: a small top level and public submodules, each name documented,
all of it costing nothing until a name is used."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import re
import subprocess
import sys
import typing
import warnings
from pathlib import Path

import pytest

import racesim
from racesim.system import CallKind, System

HEAVY = ("psycopg", "hypothesis", "racesim.engine", "racesim.store", "racesim.provision")
DOCS = Path(__file__).resolve().parent.parent / "docs" / "writing-a-system.md"
PUBLIC = ("racesim", *(f"racesim.{name}" for name in racesim.SUBMODULES))


def _section(heading: str) -> str:
    """The text of the docs page under ``heading`` up to the next heading of its level."""
    text = DOCS.read_text()
    level = heading.split(" ", 1)[0]
    start = text.index(f"\n{heading}\n")
    end = re.compile(rf"^{level} ", re.MULTILINE).search(text, start + len(heading) + 2)
    return text[start : end.start() if end else len(text)]


def _exported() -> list[tuple[str, str]]:
    return [(m, n) for m in PUBLIC for n in importlib.import_module(m).__all__]


def test_all_lists_exactly_the_public_names() -> None:
    assert sorted(racesim.__all__) == sorted({*racesim._HOMES, "__version__"})
    assert len(set(racesim.__all__)) == len(racesim.__all__)
    assert len(racesim.__all__) <= 20  # a small top level; the rest in submodules


@pytest.mark.parametrize("name", sorted(racesim.__all__))
def test_every_public_name_resolves(name: str) -> None:
    assert getattr(racesim, name) is not None


@pytest.mark.parametrize("module", PUBLIC)
def test_every_public_submodule_imports_and_its_all_resolves(module: str) -> None:
    found = importlib.import_module(module)
    assert module == "racesim" or getattr(racesim, module.removeprefix("racesim.")) is found
    names = found.__all__
    assert len(set(names)) == len(names)
    for name in names:
        assert getattr(found, name) is not None, f"{module}.{name}"
    assert set(dir(found)) >= set(names)


@pytest.mark.parametrize(("module", "name"), _exported())
def test_every_public_name_is_documented(module: str, name: str) -> None:
    section = _section(f"### `{module}`")
    assert f"`{name}`" in section, f"{module}.{name} is not described in {DOCS.name}"
    value = getattr(importlib.import_module(module), name)
    if inspect.isclass(value) or inspect.isfunction(value):
        assert (value.__doc__ or "").strip(), f"{module}.{name} has no docstring"


def test_every_submodule_has_its_section() -> None:
    headings = re.findall(r"^### `(racesim[.a-z]*)`$", DOCS.read_text(), re.MULTILINE)
    assert sorted(headings) == sorted(PUBLIC)


def test_the_names_invariants_need_are_in_racesim_system() -> None:
    import racesim.system as authoring
    from racesim.model.history import Event, History
    from racesim.model.violation import Violation

    assert (authoring.Event, authoring.History, authoring.Violation) == (Event, History, Violation)
    assert {"ProgramRun", "Call", "CallKind", "Invariants", "Actor"} <= set(authoring.__all__)


@pytest.mark.parametrize(
    "field", [f.name for f in dataclasses.fields(System)], ids=lambda name: str(name)
)
def test_every_system_field_is_documented(field: str) -> None:
    assert f"| `{field}` |" in _section("## The fields of a `System`")


@pytest.mark.parametrize("kind", typing.get_args(CallKind))
def test_every_call_kind_is_documented(kind: str) -> None:
    assert f"| `{kind}` |" in _section("## The kinds of call")
    assert f"`{kind}`" in _section("## Writing a system of your own")


def test_the_readme_links_the_page() -> None:
    assert "(docs/writing-a-system.md)" in (DOCS.parent.parent / "README.md").read_text()


@pytest.mark.parametrize("name", sorted(racesim._MOVED))
def test_a_former_top_level_name_still_resolves_with_a_warning(name: str) -> None:
    home = racesim._MOVED[name]
    with pytest.warns(DeprecationWarning, match=f"racesim.{name} is deprecated; import it from"):
        value = getattr(racesim, name)
    assert value == getattr(importlib.import_module(home), name)
    assert name not in racesim.__all__


def test_explore_is_the_submodule_and_the_function_is_inside_it() -> None:
    import racesim.explore

    assert racesim.explore.explore is importlib.import_module("racesim.explore.run").explore


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nonesuch'"):
        racesim.nonesuch  # noqa: B018
    with pytest.raises(AttributeError, match=r"'racesim\.explore' has no attribute 'nonesuch'"):
        racesim.explore.nonesuch  # noqa: B018


def test_the_current_names_give_no_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for module, name in _exported():
            getattr(importlib.import_module(module), name)


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


def test_a_submodule_loads_its_machinery_only_when_a_name_is_used() -> None:
    light = _imported_after("import racesim.explore, racesim.provision")
    assert light == ["racesim.provision"]  # the package itself, none of its modules
    assert "psycopg" in _imported_after("import racesim; racesim.provision.Server")
