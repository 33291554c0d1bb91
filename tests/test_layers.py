"""The layering in pyproject.toml ([tool.importlinter]) holds, and breaking it is caught.

lint-imports walks the root package's folder, so it reads racesim through a tree
of links with racesim.store and racesim.systems inside it (as `make lint` does).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _tree(at: Path, *, real: tuple[str, ...] = ()) -> Path:
    """Links naming the packages as installed; the folders in ``real`` are made
    as folders of links, so a file can be added to them here only."""
    package = at / "racesim"
    package.mkdir(parents=True)
    for entry in (ROOT / "harness").iterdir():
        if entry.name in real:
            (package / entry.name).mkdir()
            for inner in entry.iterdir():
                (package / entry.name / inner.name).symlink_to(inner)
        else:
            (package / entry.name).symlink_to(entry)
    (package / "store").symlink_to(ROOT / "store")
    (package / "systems").symlink_to(ROOT / "systems")
    return at


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_every_contract_is_kept(tmp_path: Path) -> None:
    done = _lint(_tree(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert " 0 broken." in done.stdout
    # store and systems are in the graph (they are outside harness/)
    assert "Systems import only racesim.system" in done.stdout
    assert "KEPT" in done.stdout and "BROKEN" not in done.stdout


def test_an_import_up_the_layers_breaks_the_contract(tmp_path: Path) -> None:
    tree = _tree(tmp_path, real=("model",))
    (tree / "racesim" / "model" / "upward.py").write_text("import racesim.engine.loop\n")
    done = _lint(tree)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "racesim.model is not allowed to import racesim.engine" in done.stdout
    assert "racesim.model.upward -> racesim.engine.loop" in done.stdout


def test_a_system_importing_the_engine_breaks_the_contract(tmp_path: Path) -> None:
    tree = _tree(tmp_path)
    (tree / "racesim" / "systems").unlink()
    systems = tree / "racesim" / "systems"
    systems.mkdir()
    for inner in (ROOT / "systems").iterdir():
        (systems / inner.name).symlink_to(inner)
    (systems / "reaching.py").write_text("from racesim.engine import loop\n")
    done = _lint(tree)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "racesim.systems is not allowed to import racesim.engine" in done.stdout


def test_a_new_top_level_module_must_be_placed_in_a_layer(tmp_path: Path) -> None:
    tree = _tree(tmp_path)
    (tree / "racesim" / "unplaced.py").write_text("")
    done = _lint(tree)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "racesim.unplaced" in done.stdout
