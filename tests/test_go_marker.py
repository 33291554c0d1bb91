"""The reference system's marker in Go with pgx (examples/go-marker), raced through
racesim's proxy: the T+0..T+4 wipe is found in the Go code on the legacy flag, and
every interleaving holds on the owner token. The "Racing any language" section of
docs/racing-any-language.md runs here as written: each ``$`` line in a shell, ``echo
$?`` showing the status of the line before it, and each line shown after a command
among its output in that order (a shown line ending in ``...`` matches any line it starts)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from toolchains import ROOT, go_marker

from racesim.provision.provide import Server

PAGE = "docs/racing-any-language.md"
SECTION = "## Racing any language"


def _section() -> list[tuple[str, list[str]]]:
    text = (ROOT / PAGE).read_text(encoding="utf-8")
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    body = text[start : end if end != -1 else len(text)]
    blocks = re.findall(r"^```console\n(.*?)^```", body, re.MULTILINE | re.DOTALL)
    assert blocks, f"{PAGE}: {SECTION} has no console block"
    steps: list[tuple[str, list[str]]] = []
    for block in blocks:
        for line in block.splitlines():
            if line.startswith("$ "):
                steps.append((line[2:], []))
            else:
                steps[-1][1].append(line.rstrip())
    return steps


def _matches(shown: str, printed: str) -> bool:
    if shown.endswith("..."):
        return printed.startswith(shown[:-3])
    return printed == shown


def test_the_go_section_runs_as_written(tmp_path: Path, pg_server: Server) -> None:
    go_marker()
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    racesim = f"{sys.executable} -m racesim.cli.main"
    env = {**os.environ, "RACESIM_DSN": pg_server.conninfo()}
    status = 0
    for command, shown in _section():
        if command == "echo $?":
            printed = f"{status}\n"
        else:
            line = re.sub(r"^racesim ", f"{racesim} ", command)
            done = subprocess.run(
                ["bash", "-c", line],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
            )
            assert "Traceback" not in done.stderr, done.stderr
            status, printed = done.returncode, done.stdout
        lines = iter(line.rstrip() for line in printed.splitlines())
        for want in (s for s in shown if s.strip()):
            assert any(_matches(want, got) for got in lines), (
                f"{PAGE} {SECTION}: `{command}` did not print, in this order:\n{want}\n"
                f"it printed:\n{printed}"
            )
    assert list((tmp_path / "found").glob("legacy-no-foreign-clear-*.toml"))


def test_the_go_code_is_raced_on_its_own_connections(tmp_path: Path, pg_server: Server) -> None:
    """The HTML page of the Go run shows each step's SQL as pgx sent it; the token
    variant's statements carry their token as a bound parameter (extended protocol)."""
    folder = go_marker()
    page = tmp_path / "t0-t4.html"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "racesim.cli.main",
            "run",
            "examples/go-marker/t0-t4.toml",
            "--system",
            "commands:examples/go-marker/racesim.toml",
            "--html",
            str(page),
        ],
        cwd=ROOT,
        env={**os.environ, "RACESIM_DSN": pg_server.conninfo()},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    html = page.read_text()
    assert "SET last_collection_started_at = NULL WHERE id = 1" in html
    token = tmp_path / "token.toml"
    token.write_text(
        (folder / "t0-t4.toml")
        .read_text()
        .replace('stores = ["legacy"]', 'stores = ["token"]')
        .replace('legacy = { breaks = "no-foreign-clear", at = "T+3" }', 'token = "holds"')
        .replace('  "T+0 cron-prev: update",\n', '  "T+0 cron-prev: update",\n')
        .replace('  "T+3 cron: update",\n', "")
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "racesim.cli.main",
            "run",
            str(token),
            "--json",
            "--system",
            "commands:examples/go-marker/racesim.toml",
        ],
        cwd=ROOT,
        env={**os.environ, "RACESIM_DSN": pg_server.conninfo()},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "last_collection_owner_id = $1" in done.stdout
    assert '"matches": true' in done.stdout
