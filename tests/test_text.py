"""What the reporter prints: progress only on a terminal, nothing hidden in output."""

from __future__ import annotations

import io

from racesim.report.text import Reporter, visible


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_goes_to_a_terminal_only() -> None:
    piped = io.StringIO()
    reporter = Reporter(out=piped)
    reporter.progress("explore token: 10 schedules, 0 violation(s), 1.0s")
    reporter.end_progress()
    reporter.line("budget spent after 10 schedules: none found, search incomplete")
    assert piped.getvalue().splitlines() == [
        "budget spent after 10 schedules: none found, search incomplete"
    ]
    terminal = _Terminal()
    reporter = Reporter(out=terminal)
    reporter.progress("explore token: 10 schedules")
    reporter.end_progress()
    reporter.line("done")
    text = terminal.getvalue()
    assert text.startswith("\rexplore token: 10 schedules")
    assert text.endswith("\rdone\n")


def test_control_characters_are_escaped() -> None:
    assert visible("a\x1b[31mb\x00c\u202ed\x07\ne") == "a\\x1b[31mb\\x00c\\u202ed\\x07\\x0ae"
    assert visible("one\ntwo\tthree", newlines=True) == "one\ntwo\\x09three"
    err = io.StringIO()
    Reporter(err=err).problem("f.toml:1: bad name '\x1b]0;pwned\x07'")
    assert err.getvalue() == "f.toml:1: bad name '\\x1b]0;pwned\\x07'\n"
