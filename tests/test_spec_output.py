"""racesim.spec.table and racesim.spec.compare: result tables as isolationtester
prints them (libpq's PQprint), and the diff against an expected ``.out``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from spec_support import SHARED

from racesim.spec.compare import diff
from racesim.spec.table import render

# -- render -------------------------------------------------------------------


def test_numeric_columns_align_right_and_text_columns_left() -> None:
    got = render([b"id", b"name"], [[b"7", b"alice"], [b"1234", b"bo"]])
    assert got == b"  id|name \n----+-----\n   7|alice\n1234|bo   \n(2 rows)\n\n"


def test_a_header_wider_than_its_values_sets_the_width() -> None:
    got = render([b"balance"], [[b"5"]])
    assert got == b"balance\n-------\n      5\n(1 row)\n\n"


@pytest.mark.parametrize(
    ("value", "numeric"),
    [
        (b"-1.5e10", True),
        (b"1 000", True),
        (b"3.", False),  # must end in a digit
        (b"e5", False),  # must not start with e
        (b"E5", False),
        (b"0x1f", False),
        (b"t", False),
    ],
)
def test_what_counts_as_numeric(value: bytes, numeric: bool) -> None:
    got = render([b"a"], [[value], [b"123456789"]])
    first = got.split(b"\n")[2]
    assert first == (value.rjust(9) if numeric else value.ljust(9))


def test_null_and_empty_values_print_as_nothing_and_do_not_decide_alignment() -> None:
    got = render([b"n", b"t"], [[None, b""], [b"42", None], [b"", b"x"]])
    assert got == b" n|t\n--+-\n  | \n42| \n  |x\n(3 rows)\n\n"


def test_no_rows_and_no_columns() -> None:
    assert render([b"x"], []) == b"x\n-\n(0 rows)\n\n"
    assert render([], []) == b""
    assert render([], [[]]) == b""


def test_widths_are_in_bytes() -> None:
    got = render([b"w"], [["é".encode()], [b"ab"]])
    assert got == "w \n--\né\nab\n(2 rows)\n\n".encode()


def _tables(text: str) -> list[tuple[str, list[str], list[list[str]]]]:
    """Each result table of an expected .out: its exact text, names and cells."""
    lines = text.split("\n")
    found = []
    for i in range(len(lines) - 1):
        if not re.fullmatch(r"-+(\+-+)*", lines[i + 1]) or "|" in lines[i + 1]:
            continue
        end = next(j for j in range(i + 2, len(lines)) if re.fullmatch(r"\(\d+ rows?\)", lines[j]))
        names = lines[i].split("|")
        cells = [row.split("|") for row in lines[i + 2 : end]]
        if all(len(row) == len(names) for row in cells):
            found.append(("\n".join(lines[i : end + 1]) + "\n\n", names, cells))
    return found


def test_every_table_of_postgresqls_expected_output_is_rendered_byte_for_byte() -> None:
    outs = sorted((SHARED / "expected").glob("*.out")) if SHARED.is_dir() else []
    if not outs:
        pytest.skip(f"no isolation expected output at {SHARED}")
    checked = 0
    for path in outs:
        for text, names, cells in _tables(path.read_text()):
            # a left-aligned value may itself start with spaces (an indented plan
            # line): read cells both ways, one of them is what was printed
            heads = [n.strip().encode() for n in names]
            rendered = {
                render(heads, [[cut(c).encode() or None for c in row] for row in cells]).decode()
                for cut in (str.strip, str.rstrip)
            }
            assert text in rendered, path.name
            checked += 1
    assert checked > 50


# -- diff ----------------------------------------------------------------------


def test_equal_output_gives_no_diff() -> None:
    assert list(diff(b"a\nb\n", b"a\nb\n", "expected.out", "racesim")) == []


def test_a_changed_line_is_a_unified_diff_with_three_lines_of_context() -> None:
    expected = b"".join(b"line %d\n" % i for i in range(10))
    got = expected.replace(b"line 5\n", b"line five\n")
    assert "".join(diff(expected, got, "expected.out", "racesim")) == (
        "--- expected.out\n+++ racesim\n@@ -3,7 +3,7 @@\n"
        " line 2\n line 3\n line 4\n-line 5\n+line five\n line 6\n line 7\n line 8\n"
    )


def test_a_missing_final_newline_is_marked_and_every_line_ends_in_one() -> None:
    lines = list(diff(b"a\nb\n", b"a\nb", "e", "g"))
    assert all(line.endswith("\n") for line in lines)
    assert "".join(lines).endswith("-b\n+b\n\\ No newline at end of file\n")


def test_bytes_that_are_not_utf8_are_shown_not_refused() -> None:
    lines = list(diff(b"ok\n", b"\xff\xfe\n", "e", "g"))
    assert lines[-1] == "+\udcff\udcfe\n"
    assert "".join(lines).encode("utf-8", "surrogateescape").endswith(b"+\xff\xfe\n")


def test_names_appear_as_given(tmp_path: Path) -> None:
    name = str(tmp_path / "two-ids.out")
    lines = list(diff(b"x\n", b"y\n", name, "racesim two-ids.spec"))
    assert lines[:2] == [f"--- {name}\n", "+++ racesim two-ids.spec\n"]
