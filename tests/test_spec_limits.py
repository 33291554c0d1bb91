"""Limits of the ``.spec`` and invariants-file readers: past a limit, exit 2 and one
line naming the file, line, limit and fix; up to it, racesim runs what
isolationtester runs (a session of 1,000 steps)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from spec_support import Target, target15, write_spec

from racesim.errors import InputError
from racesim.spec.explore import load_invariants
from racesim.spec.parse import MAX_PERMUTATIONS, parse_text

__all__ = ["target15"]


def racesim(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "racesim.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def _sessions(count: int) -> str:
    return "".join(f"session s{i}\nstep t{i} {{ SELECT {i}; }}\n" for i in range(count))


@pytest.mark.parametrize("count", [1_500, 1_560])
def test_too_many_sessions_without_permutations_is_one_short_line(
    tmp_path: Path, count: int
) -> None:
    path = tmp_path / "many.spec"
    path.write_text(_sessions(count))
    done = racesim("run", str(path))
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    [line] = done.stderr.splitlines()
    assert line.startswith(f"{path}:1: "), line
    assert f"more than {MAX_PERMUTATIONS}" in line and "fix: list the permutations" in line
    assert len(line) < 300, line  # no count of thousands of digits


def test_interleavings_are_counted_only_up_to_the_limit() -> None:
    with pytest.raises(InputError) as caught:
        parse_text(_sessions(1_560), "many.spec")
    [problem] = caught.value.problems
    assert str(problem).startswith("many.spec:1:")
    # just under the limit: 7 one-step sessions have 5,040 interleavings
    assert parse_text(_sessions(7), "seven.spec").count_permutations() == 5_040


def test_one_session_of_1000_steps_has_its_one_permutation() -> None:
    text = "session s\n" + "".join(f"step t{i} {{ SELECT {i}; }}\n" for i in range(1_000))
    spec = parse_text(text, "long.spec")
    [perm] = list(spec.run_order())
    assert [p.name for p in perm.steps] == [f"t{i}" for i in range(1_000)]


def test_one_session_of_1000_steps_runs_as_isolationtester_runs_it(
    target15: Target, tmp_path: Path
) -> None:
    text = (
        "setup { CREATE TABLE t (i int); }\nteardown { DROP TABLE t; }\nsession s\n"
        + "".join(f"step t{i} {{ INSERT INTO t VALUES ({i}); }}\n" for i in range(999))
        + "step done { SELECT count(*) AS n FROM t; }\n"
    )
    path, spec = write_spec(tmp_path, text, "long.spec")
    status, reference = target15.reference(path)
    completed, ours = target15.racesim(spec)
    assert status == 0 and completed
    assert ours == reference
    assert ours.endswith(b"step done: SELECT count(*) AS n FROM t;\n  n\n---\n999\n(1 row)\n\n")


def test_deeply_nested_invariants_file_is_refused_with_its_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[invariants]\n# nested\nx = "SELECT 1 WHERE false"\ny = ' + "[" * 500 + "\n")
    with pytest.raises(InputError) as caught:
        load_invariants(bad)
    [problem] = caught.value.problems
    assert str(problem).startswith(f"{bad}:4:")
    assert "nested more than 16 deep" in str(problem)


def test_deeply_nested_invariants_file_exits_2_with_one_line(tmp_path: Path) -> None:
    spec = tmp_path / "s.spec"
    spec.write_text("session s\nstep a { SELECT 1; }\n")
    bad = tmp_path / "s.spec.toml"
    bad.write_text("[invariants]\nx = " + "[" * 500 + "\n")
    done = racesim("explore", str(spec))
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    [line] = done.stderr.splitlines()
    assert line.startswith(f"{bad}:2:") and "fix:" in line, line
