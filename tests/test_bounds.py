"""racesim.formats.bounds: the one linear pass over TOML text before it is parsed."""

from __future__ import annotations

import tomllib

import pytest

from racesim.errors import InputError
from racesim.formats.bounds import MAX_DEPTH, MAX_DIGITS, MAX_ITEMS, MAX_KEY_PARTS, scan


def _refused(text: str, **kw: object) -> str:
    with pytest.raises(InputError) as caught:
        scan(text, "s.toml", **kw)  # type: ignore[arg-type]
    return str(caught.value)


def test_strings_are_found_with_their_offsets_and_lines() -> None:
    text = 'a = "x"\nb = [\n  "y",\n  \'z\',\n]\n'
    shape = scan(text, "s.toml")
    assert shape.strings == [(4, 1), (16, 3), (23, 4)]
    assert [text[o] for o, _ in shape.strings] == ['"', '"', "'"]


def test_comments_and_string_contents_are_skipped_as_toml_skips_them() -> None:
    text = (
        '# "not a string" [[[[\n'
        'a = "x\\"# still the string"  # a comment with "quotes"\n'
        "b = 'C:\\'\n"
        'c = "[{"\n'
    )
    tomllib.loads(text)  # the text is valid TOML
    assert [line for _, line in scan(text, "s.toml").strings] == [2, 3, 4]


def test_multi_line_strings_advance_the_line_count() -> None:
    text = 'a = """one\ntwo "" three\n"""\nb = \'\'\'x\ny\'\'\'\nc = "z"\n'
    tomllib.loads(text)
    assert [line for _, line in scan(text, "s.toml").strings] == [1, 4, 6]


def test_nesting_up_to_the_bound_passes_and_past_it_names_the_line() -> None:
    scan("x = " + "[" * MAX_DEPTH + "]" * MAX_DEPTH, "s.toml")
    message = _refused("a = 1\nx = " + "[" * (MAX_DEPTH + 1), what="a spec", needs=1)
    assert message == (
        f"s.toml:2: arrays and tables nested more than {MAX_DEPTH} deep; a spec needs at most 1"
    )
    assert "deep" in _refused("x = " + "{ a = " * (MAX_DEPTH + 1))


def test_dotted_keys_up_to_the_bound_pass_and_past_it_are_refused() -> None:
    parts = [f"k{i}" for i in range(MAX_KEY_PARTS + 1)]
    scan(".".join(parts[:MAX_KEY_PARTS]) + " = 1", "s.toml")
    scan("[" + ".".join(parts[:MAX_KEY_PARTS]) + "]", "s.toml")
    assert _refused("\n\n" + ".".join(parts) + " = 1").startswith(
        f"s.toml:3: a key of more than {MAX_KEY_PARTS} dotted parts"
    )
    assert "dotted parts" in _refused("[" + ".".join(parts) + "]")
    # dots in values and in quoted keys are not key parts
    scan("v = 1.5\nw = " + ".".join("1" * 12) + "\n" + '"' + ".".join(parts) + '" = 1', "s.toml")


def test_a_long_number_is_refused_in_a_value_and_counted_without_underscores() -> None:
    scan("seed = " + "9" * MAX_DIGITS, "s.toml")
    scan("seed = " + "_".join("9" * MAX_DIGITS), "s.toml")
    message = _refused("seed = " + "_".join("9" * (MAX_DIGITS + 1)))
    assert message == (
        f"s.toml:1: a number of {MAX_DIGITS + 1} digits; numbers in a scenario have at"
        " most 19 (seed < 2**63)"
    )
    scan("9" * (MAX_DIGITS + 5) + " = 1", "s.toml")  # a bare key of digits is a name


def test_items_are_counted_across_the_whole_file() -> None:
    half = MAX_ITEMS // 2 - 2  # each string and its comma
    scan("s = [" + '"a",' * half + "]", "s.toml")
    message = _refused("s = [" + '"a",' * (half + 10) + "]", what="a schedule")
    assert message == (
        f"s.toml:1: more than {MAX_ITEMS} keys and list items; split a schedule into smaller files"
    )


def test_broken_text_is_left_to_the_parser() -> None:
    # an unterminated string or a stray closer ends the scan without a verdict
    assert scan('a = "open\nb = 1', "s.toml").strings == [(4, 1)]
    assert scan("]\n" + "[" * (MAX_DEPTH + 5), "s.toml").strings == []
