"""Finding a system: a value, an installed name (entry points), or package.module:attribute."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from racesim.errors import InputError
from racesim.system import GROUP, System, registered, resolve

TINY = """
from racesim.system import Program, System, Variant

def noop(ctx):
    yield from ()
    return "done"

SYSTEM = System(
    name="tiny",
    variants=(Variant("only", open=lambda session: None, watch=lambda conn: None),),
    programs={"noop": Program(noop, frozenset())},
    invariants=lambda actors: None,
    invariant_names=(),
)
NOT_A_SYSTEM = 42
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user's project folder with a module defining a system; racesim runs in it."""
    (tmp_path / "tinysys.py").write_text(TINY)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path / "elsewhere"))  # restores sys.path afterwards
    return tmp_path


def dist(where: Path, name: str, entries: dict[str, str]) -> None:
    """An installed distribution (metadata only) registering ``entries`` as systems."""
    info = where / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    lines = "".join(f"{k} = {v}\n" for k, v in entries.items())
    (info / "entry_points.txt").write_text(f"[{GROUP}]\n{lines}")


def test_a_system_value_is_itself(project: Path) -> None:
    found = resolve("tinysys:SYSTEM")
    assert resolve(found) is found


def test_a_module_of_the_current_directory_is_found(project: Path) -> None:
    found = resolve("tinysys:SYSTEM")
    assert isinstance(found, System) and found.name == "tiny"


def test_an_installed_name_is_found_through_the_entry_point_group(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = project / "site"
    dist(site, "tiny_dist", {"tiny": "tinysys:SYSTEM"})
    (site / "tinysys.py").write_text(TINY)  # installed with its distribution, not in the cwd
    monkeypatch.syspath_prepend(str(site))
    assert registered()["tiny"] == "tinysys:SYSTEM"
    assert resolve("tiny").name == "tiny"


def test_a_name_two_distributions_register_differently_is_refused(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = project / "site"
    dist(site, "one_dist", {"tiny": "tinysys:SYSTEM"})
    dist(site, "two_dist", {"tiny": "othersys:SYSTEM"})
    monkeypatch.syspath_prepend(str(site))
    with pytest.raises(InputError) as caught:
        resolve("tiny")
    (line,) = caught.value.problems
    assert line == (
        "--system: the system name 'tiny' is registered by one_dist (tinysys:SYSTEM)"
        " and two_dist (othersys:SYSTEM); give package.module:attribute instead"
    )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nosuch", "--system: no system named 'nosuch' is installed (installed: "),
        ("no such", "--system: expected a system name or package.module:attribute, got 'no such'"),
        ("tinysys:", "--system: expected package.module:attribute, got 'tinysys:'"),
        (":SYSTEM", "--system: expected package.module:attribute, got ':SYSTEM'"),
        ("nosuchmodule:SYSTEM", "--system: cannot load 'nosuchmodule:SYSTEM' (ModuleNotFoundError"),
        ("tinysys:MISSING", "--system: cannot load 'tinysys:MISSING' (AttributeError"),
        ("tinysys:NOT_A_SYSTEM", "--system: 'tinysys:NOT_A_SYSTEM' is a int, not a System"),
    ],
)
def test_bad_specs_are_one_line_of_input_error(project: Path, spec: str, message: str) -> None:
    with pytest.raises(InputError) as caught:
        resolve(spec)
    (line,) = caught.value.problems
    assert line.startswith(message)


def test_a_module_that_fails_to_import_is_input_error_naming_why(project: Path) -> None:
    (project / "brokensys.py").write_text("def oops(:\n")
    with pytest.raises(InputError) as caught:
        resolve("brokensys:SYSTEM", where="scenarios/x.toml:1: system")
    (line,) = caught.value.problems
    assert line.startswith(
        "scenarios/x.toml:1: system: cannot load 'brokensys:SYSTEM' (SyntaxError"
    )
    assert line.endswith("check the module is importable and defines the attribute")


def test_a_module_raising_at_import_is_input_error(project: Path) -> None:
    (project / "raisingsys.py").write_text(
        textwrap.dedent(
            """
            raise RuntimeError("no database configured\\nsecond line")
            """
        )
    )
    with pytest.raises(InputError) as caught:
        resolve("raisingsys:SYSTEM")
    assert caught.value.problems == [
        "--system: cannot load 'raisingsys:SYSTEM' (RuntimeError: no database configured);"
        " check the module is importable and defines the attribute"
    ]
