"""Every section of README.md and docs/ that holds a ``# file: NAME`` block ("Writing
a system of your own", "Racing code you already have", ...), run exactly as
written, from outside the repository, against racesim installed from a wheel (not
the editable checkout).

Every fenced block of the section whose first line is ``# file: NAME`` is written
to NAME in an empty folder; every ``sh`` block's lines are run there in order,
each ending in ``# exit N``, the exit status it must have; every ``console``
block's ``$ command`` lines are run there too, and each line shown after one is
among what it printed, in that order (a shown line ending in ``...`` matches any
line it starts). ``pip`` in the environment is the test environment's pip aimed
at it, offline (no index, builds with the setuptools already installed).
"""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

import pytest
from installed import ROOT, Installed, install

SECTION = "## Writing a system of your own"
CODE_SECTION = "## Racing code you already have"
FENCE = re.compile(r"^```(?P<info>\S*)\n(?P<body>.*?)^```$", re.S | re.M)
FILE = re.compile(r"^# file: (?P<name>[\w.-]+)\n")
COMMAND = re.compile(r"^(?P<command>.+?)\s+# exit (?P<status>\d+)$")


PAGES = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))


def walkthroughs() -> list[str]:
    """The ``## `` titles of every section, on any page, that holds a ``# file:`` block."""
    titles = []
    for page in PAGES:
        text = page.read_text()
        for m in re.finditer(r"^## .*$", text, re.M):
            end = text.find("\n## ", m.end())
            body = text[m.end() : end if end != -1 else len(text)]
            if any(FILE.match(b.group("body")) for b in FENCE.finditer(body)):
                titles.append(m[0])
    return titles


def section(title: str = SECTION) -> str:
    """The section under ``title``, up to the next ``## `` heading, from its page."""
    texts = [p.read_text() for p in PAGES if f"{title}\n" in p.read_text()]
    assert len(texts) == 1, f"{title!r} is on {len(texts)} pages, not one"
    text = texts[0]
    start = text.index(f"{title}\n")
    end = text.find("\n## ", start + len(title))
    return text[start : end if end != -1 else len(text)]


def steps(title: str = SECTION) -> list[tuple[str, str, str]]:
    """("file", name, text), ("run", command, status) and ("show", command, the
    lines shown after it), in the page's order."""
    found = []
    for block in FENCE.finditer(section(title)):
        body = block.group("body")
        named = FILE.match(body)
        if named:
            found.append(("file", named.group("name"), body))
        elif block.group("info") == "console":
            for line in body.splitlines():
                if line.startswith("$ "):
                    found.append(("show", line[2:], ""))
                else:
                    assert found and found[-1][0] == "show", (
                        f"{title}: a console block starts with $"
                    )
                    kind, command, shown = found[-1]
                    found[-1] = (kind, command, shown + line.rstrip() + "\n")
        elif block.group("info") == "sh":
            for line in body.splitlines():
                if line.strip():
                    m = COMMAND.match(line.strip())
                    assert m, f"{title}: a command without '# exit N': {line!r}"
                    found.append(("run", m.group("command"), m.group("status")))
    return found


def test_the_section_has_the_pieces_it_promises() -> None:
    kinds = [(kind, name) for kind, name, _ in steps()]
    assert ("file", "seats.py") in kinds
    assert ("file", "double-booking.toml") in kinds
    assert ("run", "pip install .") in kinds
    seats = next(text for kind, name, text in steps() if name == "seats.py")
    assert len(seats.splitlines()) <= 80


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    env = install(tmp_path_factory.mktemp("walkthrough-install"))
    pip = env.python.parent / "pip"
    pip.write_text(
        "#!/bin/sh\n"
        "export PIP_NO_INDEX=1 PIP_NO_BUILD_ISOLATION=0 PIP_DISABLE_PIP_VERSION_CHECK=1\n"
        f'exec {shlex.quote(sys.executable)} -m pip --python {shlex.quote(str(env.python))} "$@"\n'
    )
    pip.chmod(0o755)
    return env


def test_the_code_section_has_the_pieces_it_promises() -> None:
    kinds = [(kind, name) for kind, name, _ in steps(CODE_SECTION)]
    assert ("file", "bank.py") in kinds
    commands = " ".join(name for kind, name in kinds if kind == "run")
    for strategy in ("exhaustive", "hypothesis", "pct"):
        assert f"--store read-then-write --strategy {strategy}" in commands
    assert "replay" in commands and "--html" in commands
    bank = next(text for kind, name, text in steps(CODE_SECTION) if name == "bank.py")
    assert len(bank.splitlines()) <= 35


def test_the_walkthroughs_are_found() -> None:
    assert {SECTION, CODE_SECTION} <= set(walkthroughs())


def _shown(want: str, printed: str) -> bool:
    return printed.startswith(want[:-3]) if want.endswith("...") else printed == want


@pytest.mark.parametrize("title", walkthroughs())
def test_the_walkthrough_runs_as_written(installed: Installed, tmp_path: Path, title: str) -> None:
    project = tmp_path / "project"
    project.mkdir()
    assert not project.resolve().is_relative_to(ROOT)
    for kind, what, text in steps(title):
        if kind == "file":
            (project / what).write_text(text)
            continue
        done = installed.run(*shlex.split(what), cwd=project, timeout=300)
        if kind == "show":
            assert "Traceback" not in done.stderr, done.stderr
            printed = iter(line.rstrip() for line in done.stdout.splitlines())
            for want in (line for line in text.splitlines() if line.strip()):
                assert any(_shown(want, got) for got in printed), (
                    f"{title}: `{what}` did not print, in this order:\n{want}\n"
                    f"it printed:\n{done.stdout}"
                )
            continue
        assert done.returncode == int(text), (
            f"{what}: exit {done.returncode}, the page says {text}\n{done.stdout}{done.stderr}"
        )
    # What ran was the wheel, not this checkout.
    where = installed.run(
        installed.python, "-c", "import racesim; print(racesim.__file__)", cwd=project
    )
    assert Path(where.stdout.strip()).is_relative_to(installed.site_packages)
    if title == CODE_SECTION:  # the replay drew each step with its SQL and line of bank.py
        page = (project / "transfer.html").read_text()
        assert "bank.py:6" in page and "SELECT balance FROM accounts WHERE id = 1" in page
        assert list((project / "found").glob("read-then-write-*-exhaustive-seed0.spec"))
