"""Every example block in the README and in every page of docs/ runs as written.

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
- ``yaml``: a CI workflow; every ``racesim`` command it runs, with each value of
  the job's matrix, is accepted by racesim's parser and names a store and a
  configuration its system has.

A block of any other kind fails the test, so nothing in the README or docs/ goes
unchecked. The blocks of "Writing a system of your own", "Racing code you already
have" and "Racing any language" (wherever they are) are files and commands of a
project of their own: ``tests/test_walkthrough.py`` writes and runs the first two,
from outside the repository, against an installed racesim, and
``tests/test_go_marker.py`` runs the third.
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
from racesim.system import DEFAULT_SYSTEM, resolve

ROOT = Path(__file__).parent.parent
README = ROOT / "README.md"
PAGES = (README, *sorted((ROOT / "docs").glob("*.md")))
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
KINDS = ("toml", "python", "console", "sh", "text", "yaml")


@dataclass(frozen=True)
class Block:
    kind: str
    text: str
    page: str
    line: int

    def __str__(self) -> str:
        return f"{self.page}:{self.line}"


WALKTHROUGHS = (
    "## Writing a system of your own",
    "## Racing code you already have",
    "## Racing any language",
)
"""Sections run as a whole by tests of their own: tests/test_walkthrough.py (from a
separate project) and tests/test_go_marker.py (its shell lines too). Any other
section holding a ``# file: NAME`` block is a project of its own too, and
tests/test_walkthrough.py runs it."""
FILE_BLOCK = re.compile(r"^```[^\n`]*\n# file: ", re.MULTILINE)


def _page_blocks(page: Path) -> list[Block]:
    text = page.read_text(encoding="utf-8")
    spans = []
    for m in re.finditer(r"^## .*$", text, re.MULTILINE):
        end = text.find("\n## ", m.end())
        end = end if end != -1 else len(text)
        if m[0] in WALKTHROUGHS or FILE_BLOCK.search(text, m.end(), end):
            spans.append((m.start(), end))
    name = page.relative_to(ROOT).as_posix()
    return [
        Block(m[1].strip(), m[2], name, text.count("\n", 0, m.start()) + 1)
        for m in FENCE.finditer(text)
        if not any(start < m.start() < end for start, end in spans)
    ]


def _blocks() -> list[Block]:
    return [block for page in PAGES for block in _page_blocks(page)]


def _of(kind: str) -> list[Block]:
    return [b for b in _blocks() if b.kind == kind]


def test_every_block_is_of_a_kind_that_is_checked() -> None:
    blocks = _blocks()
    assert len(blocks) >= 6
    for block in blocks:
        assert block.kind in KINDS, f"{block}: label the block with one of {', '.join(KINDS)}"
    assert {b.kind for b in blocks} >= {"toml", "python", "console", "sh", "text", "yaml"}


def test_every_walkthrough_is_on_exactly_one_page() -> None:
    for title in WALKTHROUGHS:
        homes = [p.name for p in PAGES if title + "\n" in p.read_text(encoding="utf-8")]
        assert len(homes) == 1, f"{title!r} is on {homes or 'no page'}"


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
    # What the conftest example names but the page leaves to the reader: its schema
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


def _workflow_runs(block: Block) -> list[str]:
    """The commands of a workflow's ``- run:`` steps (a folded ``>`` value joined)."""
    lines = block.text.splitlines()
    runs = []
    for i, line in enumerate(lines):
        step = re.match(r"^(\s*)- run: (.*)$", line)
        if not step:
            continue
        value = step[2].split(" #", 1)[0].strip()
        if value == ">":
            body = []
            for nxt in lines[i + 1 :]:
                if nxt.strip() and len(nxt) - len(nxt.lstrip()) <= len(step[1]) + 2:
                    break
                body.append(nxt.strip())
            value = " ".join(body).strip()
        runs.append(value)
    return runs


def _matrix(block: Block) -> dict[str, list[str]]:
    """Each matrix variable of the workflow with its values (``name: [a, b]``)."""
    found = re.findall(r"^\s*matrix:\n\s*(\w+): \[([^\]\n]*)\]$", block.text, re.MULTILINE)
    return {name: [v.strip() for v in values.split(",")] for name, values in found}


@pytest.mark.parametrize("block", _of("yaml"), ids=str)
def test_workflow_commands_are_accepted(block: Block) -> None:
    runs = _workflow_runs(block)
    assert any(run.startswith("racesim ") for run in runs), f"{block}: no racesim command"
    matrix = _matrix(block)
    parser = build_parser()
    for run in runs:
        if run == "pip install .":  # racesim, from the checkout
            assert (ROOT / "pyproject.toml").is_file()
            continue
        assert run.startswith("racesim "), f"{block}: {run!r} is neither pip nor racesim"
        names = re.findall(r"\$\{\{ matrix\.(\w+) \}\}", run)
        assert len(set(names)) <= 1, f"{block}: {run!r} names more than one matrix variable"
        for value in matrix[names[0]] if names else [""]:
            command = re.sub(r"\$\{\{ matrix\.\w+ \}\}", value, run)
            try:
                args = parser.parse_args(shlex.split(command)[1:])
            except SystemExit:
                pytest.fail(f"{block}: racesim refuses `{command}`")
            system = resolve(args.system or DEFAULT_SYSTEM)
            assert args.store in {v.name for v in system.variants}, f"{block}: {command}"
            if getattr(args, "config", None):
                assert args.config in system.configs, f"{block}: {command}"
