"""The .spec grammar: what parses, in isolationtester's order, and what is refused.

Every refused spec is also given to the real isolationtester, which must refuse it
too (it parses before connecting, so no server is needed for that).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from racesim.errors import InputError
from racesim.provision.binaries import BinariesNotFound, find_binaries
from racesim.spec.parse import MAX_PERMUTATIONS, Blocker, load, parse_text, quote_name
from racesim.spec.tool import find_isolationtester


def test_full_grammar() -> None:
    spec = parse_text(
        """# a comment
setup { CREATE TABLE a (i int); }
setup
{
  CREATE TABLE b (i int);
}
teardown { DROP TABLE a, b; }
session "s 1"
setup { BEGIN; }
step "x""y" {  SELECT 1;  }   # comment after a step
step s1b	{ SELECT '#not a comment'; }
teardown { COMMIT; }
session s2
step s2a { SELECT 2; }
permutation "x""y" s2a(*) s1b(s2a, s2a notices 3)
permutation s2a "x""y"
""",
        "g.spec",
    )
    assert spec.setups == ("CREATE TABLE a (i int);", "\n  CREATE TABLE b (i int);\n")
    assert spec.teardown == "DROP TABLE a, b;"
    assert [s.name for s in spec.sessions] == ["s 1", "s2"]
    s1 = spec.sessions[0]
    assert (s1.setup, s1.teardown) == ("BEGIN;", "COMMIT;")
    assert [(st.name, st.sql, st.line) for st in s1.steps] == [
        ('x"y', "SELECT 1;", 10),
        ("s1b", "SELECT '#not a comment';", 11),
    ]
    first = spec.permutations[0]
    assert [p.name for p in first.steps] == ['x"y', "s2a", "s1b"]
    assert first.steps[1].markers == (Blocker("once", line=15),)
    assert first.steps[2].markers == (
        Blocker("other", "s2a", line=15),
        Blocker("notices", "s2a", 3, line=15),
    )
    assert first.steps[2].text() == "s1b(s2a, s2a notices 3)"
    assert first.steps[0].text() == '"x""y"'
    assert spec.unused == ()


def test_all_permutations_in_isolationtester_order() -> None:
    spec = parse_text("session a step a1 {} step a2 {} session b step b1 {}", "p.spec")
    order = [" ".join(p.name for p in perm.steps) for perm in spec.run_order()]
    assert order == ["a1 a2 b1", "a1 b1 a2", "b1 a1 a2"]
    assert spec.count_permutations() == 3


def test_unused_steps_are_warnings_in_strcmp_order() -> None:
    spec = parse_text("session a step zz {} step Ab {} step used {} permutation used", "u.spec")
    assert spec.unused == ("Ab", "zz")


def test_quote_name_round_trips() -> None:
    for name in ("s1", "setup", "two words", 'q"uote', "1abc", "ünï"):
        text = f"session s step {quote_name(name)} {{ SELECT 1; }}"
        assert parse_text(text, "q.spec").sessions[0].steps[0].name == name


BAD = {
    "duplicate-step": (
        "session a\nstep x { SELECT 1; }\nsession b\nstep x { SELECT 2; }\n",
        ["bad.spec:4: duplicate step name 'x' (first at line 2)"],
    ),
    "unknown-step": (
        "session a\nstep x { SELECT 1; }\npermutation x\npermutation y x\n",
        ["bad.spec:4: undefined step 'y' in permutation"],
    ),
    "marker-unknown": (
        "session a\nstep x { }\nsession b\nstep y { }\npermutation x(zz) y\n",
        ["bad.spec:5: marker of step 'x' names 'zz', which is not a step of this permutation"],
    ),
    "marker-not-in-permutation": (
        "session a\nstep x { }\nsession b\nstep y { }\npermutation x(y)\npermutation y\n",
        ["bad.spec:5: marker of step 'x' names 'y', which is not a step of this permutation"],
    ),
    "marker-own-session": (
        "session a\nstep x { }\nstep x2 { }\npermutation x(x2) x2\n",
        ["bad.spec:4: step 'x' cannot wait for 'x2' of its own session"],
    ),
    "unterminated-sql": ("session a\nstep x { SELECT 1;\n", ["bad.spec:2: unterminated SQL block"]),
    "unterminated-quote": ('session "a\n', ["bad.spec:1: newline in a quoted name"]),
    "quote-at-eof": ('session "a', ["bad.spec:1: unterminated quoted name"]),
    "bad-character": (
        "session a\nstep x { }\npermutation x;\n",
        ["bad.spec:3: unexpected character ';'"],
    ),
    "step-without-sql": (
        "session a\nstep x\nstep y { }\n",
        ["bad.spec:3: syntax error: expected the step's SQL block { ... }, found 'step'"],
    ),
    "no-session": ("setup { }\n", ["bad.spec:2: syntax error: expected session"]),
    "session-without-steps": (
        "session a\nsession b step y { }\n",
        ["bad.spec:2: syntax error: expected step (a session needs at least one)"],
    ),
    "teardown-after-sessions": (
        "session a step x { }\nsession b step y { } teardown { }\nteardown { }\n",
        ["bad.spec:3: syntax error: expected session, permutation or the end of the file"],
    ),
    "notices-without-number": (
        "session a step x { }\nsession b step y { }\npermutation x(y notices) y\n",
        ["bad.spec:3: syntax error: expected a number after notices, found ')'"],
    ),
    "keyword-as-name": (
        "session setup step x { }\n",
        ["bad.spec:1: syntax error: expected a session name"],
    ),
    "empty-markers": (
        "session a step x { }\npermutation x()\n",
        ["bad.spec:2: syntax error: expected '*' or a step name in the marker, found ')'"],
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_spec_is_refused_with_file_and_line(case: str) -> None:
    text, starts = BAD[case]
    with pytest.raises(InputError) as info:
        parse_text(text, "bad.spec")
    problems = info.value.problems
    assert len(problems) == len(starts)
    for problem, start in zip(problems, starts, strict=True):
        assert problem.startswith(start), problem
        assert "fix:" in problem or "syntax error" in problem or "unexpected" in problem


def _tools() -> list[Path]:
    found = []
    for prefer in ("system", "embedded"):
        try:
            tool = find_isolationtester(find_binaries(prefer))
        except BinariesNotFound:
            continue
        if tool is not None:
            found.append(tool)
    return found


@pytest.mark.parametrize("case", sorted(BAD))
def test_isolationtester_refuses_the_same_specs(case: str, tmp_path: Path) -> None:
    tools = _tools()
    if not tools:
        pytest.skip("no isolationtester on this machine")
    path = tmp_path / "bad.spec"
    path.write_text(BAD[case][0])
    for tool in tools:
        with path.open("rb") as stdin:
            done = subprocess.run(
                [str(tool), "host=/nonexistent dbname=none"],
                stdin=stdin,
                capture_output=True,
                timeout=30,
                check=False,
            )
        assert done.returncode == 1, (tool, done.stderr)
        assert b"Parsed test spec" not in done.stdout


def test_several_problems_are_all_reported() -> None:
    with pytest.raises(InputError) as info:
        parse_text(
            "session a\nstep x { }\nstep x { }\nsession b\nstep y { }\npermutation q y(w)\n",
            "many.spec",
        )
    assert [p.split(":")[1] for p in info.value.problems] == ["3", "6", "6"]


def test_too_many_interleavings_are_refused() -> None:
    sessions = " ".join(
        f"session s{i} " + " ".join(f"step s{i}x{j} {{ }}" for j in range(4)) for i in range(4)
    )
    with pytest.raises(
        InputError, match=f"more than {MAX_PERMUTATIONS} interleavings \\(the most racesim runs\\)"
    ):
        parse_text(sessions, "big.spec")


def test_load_refuses_unreadable_and_binary_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read"):
        load(tmp_path / "missing.spec")
    binary = tmp_path / "b.spec"
    binary.write_bytes(b"session a\0")
    with pytest.raises(InputError, match="NUL byte"):
        load(binary)
