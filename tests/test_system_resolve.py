"""Finding a system: a value, an installed name (entry points), or package.module:attribute."""

from __future__ import annotations

import inspect
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import racesim
from racesim.errors import InputError
from racesim.formats.scenario import parse
from racesim.registry import KINDS
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


def dist(where: Path, name: str, entries: dict[str, str], group: str = GROUP) -> None:
    """An installed distribution (metadata only) registering ``entries`` in ``group``
    (as systems, by default)."""
    info = where / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    lines = "".join(f"{k} = {v}\n" for k, v in entries.items())
    (info / "entry_points.txt").write_text(f"[{group}]\n{lines}")


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


KIND = """
import dataclasses

from racesim.system import Call, Program, System, Variant

def bump(ctx):
    yield Call("read")
    return "done"

MADE = {}

def from_name(text):
    return MADE.setdefault(text, System(
        name=text,
        variants=(Variant("only", open=lambda session: None, watch=lambda conn: None),),
        programs={"bump": Program(bump, frozenset({"read"}))},
        invariants=lambda actors: None,
        invariant_names=(),
    ))

def made(text):
    return MADE.get(text)
"""

SCENARIO = """
system = "{name}"
stores = ["only"]
schedule = ["T+0 a: read"]

[actors]
a = {{ program = "bump" }}

[expect]
only = "holds"
"""


@pytest.fixture
def kinds(project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Two installed system kinds of a user's: ``datakind:`` makes systems of data alone
    (``RUNS_CODE = False``, as ``spec:``), ``codekind:`` says nothing (so may run code)."""
    site = project / "site"
    (site / "datakind.py").parent.mkdir(parents=True)
    (site / "datakind.py").write_text(KIND + "RUNS_CODE = False\n")
    (site / "codekind.py").write_text(KIND)
    dist(site, "kinds_dist", {"datakind": "datakind", "codekind": "codekind"}, group=KINDS)
    monkeypatch.syspath_prepend(str(site))
    return site


def test_a_prefix_names_a_system_of_an_installed_kind(kinds: Path) -> None:
    found = resolve("datakind:one")
    assert found.name == "datakind:one" and resolve("datakind:one") is found


def test_a_kind_of_data_alone_may_be_named_by_a_scenario_file_on_its_own(kinds: Path) -> None:
    scenario = parse(SCENARIO.format(name="datakind:one"), "x.toml")
    assert scenario.system is resolve("datakind:one")


def test_a_kind_that_may_run_code_is_named_by_the_caller_not_the_file(kinds: Path) -> None:
    text = SCENARIO.format(name="codekind:one")
    with pytest.raises(InputError) as caught:
        parse(text, "x.toml")
    (line,) = caught.value.problems
    assert line.startswith("x.toml:2: system 'codekind:one' is not an installed system")
    assert parse(text, "x.toml", "codekind:one").system is resolve("codekind:one")


def _inner() -> list[tuple[str, Callable[..., Any]]]:
    from racesim.engine.loop import Engine
    from racesim.engine.pool import SessionPool
    from racesim.engine.prepare import preparer
    from racesim.explore.drive import Drive
    from racesim.explore.machines import race_machine
    from racesim.explore.portfolio import portfolio
    from racesim.explore.search import access, exhaustive, pct
    from racesim.explore.shrink import shrink
    from racesim.runner import databases, run_plan

    found: list[Callable[..., Any]] = [
        Engine,
        SessionPool,
        preparer,
        Drive,
        race_machine,
        portfolio,
        access,
        exhaustive,
        pct,
        shrink,
        databases,
        run_plan,
    ]
    return [(f.__qualname__, f) for f in found]


@pytest.mark.parametrize(("name", "inner"), _inner())
def test_no_layer_beneath_the_edges_has_a_system_of_its_own(
    name: str, inner: Callable[..., Any]
) -> None:
    """Only the command line, the plugin and the public functions name the reference
    system; beneath them a System is always handed in (forgetting it is a TypeError,
    never a run of the reference system)."""
    param = inspect.signature(inner).parameters["system"]
    assert param.default is inspect.Parameter.empty, name
    assert param.annotation == "System", name


def test_resolve_has_no_default_system() -> None:
    assert inspect.signature(resolve).parameters["spec"].default is inspect.Parameter.empty
    with pytest.raises(TypeError):
        resolve()  # type: ignore[call-arg]


def test_the_reference_invariant_names_are_no_top_level_name() -> None:
    with pytest.raises(AttributeError, match=r'resolve\("NAME"\)\.invariant_names'):
        racesim.INVARIANTS  # noqa: B018
