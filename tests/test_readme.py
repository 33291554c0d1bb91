"""Every example block in the README runs as written.

Each fenced block says what it is, and each kind is checked its own way:

- ``toml``: a scenario file; it loads, and runs on every store it names with the
  outcome it expects, on real PostgreSQL.
- ``python``: pytest code for the plugin; the blocks are written into a project of
  their own (a block whose first line is ``# conftest.py`` as its conftest) and
  run by pytest in a child process.
- ``console``: ``$ command`` lines and, after each, lines of its output: the
  command runs and its output holds those lines, in that order.
- ``sh``: ``make`` lines; each target exists (``make -n``).
- ``text``: the command synopsis: every subcommand and option it shows exists.

A block of any other kind fails the test, so nothing in the README goes unchecked.
The blocks of "Writing a system of your own" are files and commands of a project of
their own: ``tests/test_walkthrough.py`` writes and runs them, from outside the
repository, against an installed racesim.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from commands import pytest_run

from racesim.cli.main import build_parser
from racesim.engine.loop import Options
from racesim.formats.scenario import load
from racesim.provision.databases import Databases
from racesim.provision.provide import Server
from racesim.runner import run_one

ROOT = Path(__file__).parent.parent
README = ROOT / "README.md"
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
KINDS = ("toml", "python", "console", "sh", "text")


@dataclass(frozen=True)
class Block:
    kind: str
    text: str
    line: int

    def __str__(self) -> str:
        return f"README.md:{self.line}"


WALKTHROUGHS = (
    "## Writing a system of your own",
    "## Racing code you already have",
    "## Racing any language",
)
"""Sections run as a whole by tests of their own: tests/test_walkthrough.py (from a
separate project) and tests/test_go_marker.py (its shell lines too)."""


def _blocks() -> list[Block]:
    text = README.read_text(encoding="utf-8")
    spans = []
    for title in WALKTHROUGHS:
        start = text.find(title)
        if start != -1:
            end = text.find("\n## ", start + 1)
            spans.append((start, end if end != -1 else len(text)))
    return [
        Block(m[1].strip(), m[2], text.count("\n", 0, m.start()) + 1)
        for m in FENCE.finditer(text)
        if not any(start < m.start() < end for start, end in spans)
    ]


def _of(kind: str) -> list[Block]:
    return [b for b in _blocks() if b.kind == kind]


def test_every_block_is_of_a_kind_that_is_checked() -> None:
    blocks = _blocks()
    assert len(blocks) >= 6
    for block in blocks:
        assert block.kind in KINDS, f"{block}: label the block with one of {', '.join(KINDS)}"
    assert {b.kind for b in blocks} >= {"toml", "python", "console", "sh", "text"}


@pytest.mark.parametrize("block", _of("toml"), ids=str)
def test_toml_example_loads_and_meets_its_expectations(
    block: Block, databases: Databases, tmp_path: Path
) -> None:
    path = tmp_path / "example.toml"
    path.write_text(block.text, encoding="utf-8")
    scenario = load(path)
    assert scenario.stores
    for store in scenario.stores:
        result = run_one(scenario, store, databases, Options())
        assert result.verdict.matches, f"{block} on {store}: {result.verdict.summary}"
        assert not result.verdict.skipped, f"{block} on {store}: skipped"


def test_python_examples_run_under_pytest(tmp_path: Path, pg_server: Server) -> None:
    blocks = _of("python")
    assert blocks
    tests = []
    for block in blocks:
        if block.text.startswith("# conftest.py"):
            (tmp_path / "conftest.py").write_text(block.text)
        else:
            tests.append(f"# {block}\n{block.text}")
    # What the conftest example names but the README leaves to the reader: its schema
    # file, and a test that uses the fixture it makes.
    (tmp_path / "schema.sql").write_text("CREATE TABLE seats (id int PRIMARY KEY, holder text);\n")
    tests.append(
        "def test_the_conftest_fixture(seats_db):\n"
        "    import psycopg\n"
        "    with psycopg.connect(seats_db) as conn:\n"
        "        assert conn.execute('SELECT count(*) FROM seats').fetchone() == (0,)\n"
    )
    (tmp_path / "test_readme_examples.py").write_text("\n\n".join(tests))
    done = pytest_run(
        ROOT,  # the examples name scenarios/ relative to a checkout
        pg_server.conninfo(),
        "--rootdir",
        str(tmp_path),
        "-c",
        os.devnull,
        str(tmp_path / "test_readme_examples.py"),
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert f"{len(tests)} passed" in done.stdout, done.stdout[-2000:]


def _commands(block: Block) -> list[tuple[str, list[str]]]:
    """The ``$ command`` lines of a console block, each with the output lines shown after it."""
    out: list[tuple[str, list[str]]] = []
    for line in block.text.splitlines():
        if line.startswith("$ "):
            out.append((line[2:], []))
        else:
            assert out, f"{block}: a console block starts with a $ command line"
            out[-1][1].append(line.rstrip())
    return out


@pytest.mark.parametrize("block", _of("console"), ids=str)
def test_console_example_prints_what_it_shows(block: Block, pg_server: Server) -> None:
    for command, shown in _commands(block):
        words = shlex.split(command)
        assert words[0] == "racesim", f"{block}: only racesim commands are run"
        done = subprocess.run(
            [sys.executable, "-m", "racesim.cli.main", *words[1:]],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "RACESIM_DSN": pg_server.conninfo()},
        )
        assert "Traceback" not in done.stderr, done.stderr
        printed = iter(line.rstrip() for line in done.stdout.splitlines())
        for want in (s for s in shown if s.strip()):
            assert any(got == want for got in printed), (
                f"{block}: `{command}` did not print, in this order:\n{want}\n"
                f"it printed:\n{done.stdout}"
            )


@pytest.mark.parametrize("block", _of("sh"), ids=str)
def test_make_lines_name_real_targets(block: Block) -> None:
    for line in block.text.splitlines():
        command = line.split("#", 1)[0].split()
        if not command:
            continue
        assert command[0] == "make", f"{block}: only make lines belong in an sh block"
        done = subprocess.run(
            ["make", "-n", *command[1:]], cwd=ROOT, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, f"{block}: {line.strip()}: {done.stderr}"


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


@pytest.mark.parametrize("block", _of("text"), ids=str)
def test_synopsis_names_only_real_commands_and_options(block: Block) -> None:
    commands = _subcommands()
    current: argparse.ArgumentParser | None = None
    seen = set()
    for line in block.text.splitlines():
        if line.startswith("racesim "):
            name = line.split()[1]
            assert name in commands, f"{block}: no subcommand {name!r}"
            current = commands[name]
            seen.add(name)
        assert current is not None, f"{block}: the synopsis starts with a racesim line"
        options = {s for a in current._actions for s in a.option_strings}
        for option in re.findall(r"(?<![\w-])--[a-z][a-z-]*", line):
            assert option in options, f"{block}: racesim {name} has no option {option}"
    assert seen == set(commands), f"{block}: not shown: {sorted(set(commands) - seen)}"
