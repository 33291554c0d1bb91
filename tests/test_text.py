"""What the reporter prints: progress only on a terminal, nothing hidden in output."""

from __future__ import annotations

import io

from racesim.model.violation import Violation
from racesim.report.text import Reporter, timeline_line, visible
from racesim.report.view import EventView, StateView


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


def _event(label: str, actor: str = "a", holder: str = "") -> EventView:
    return EventView(
        seq=0,
        kind="step",
        label=label,
        actor=actor,
        call="write",
        line=None,
        args=(),
        result="ok",
        error=None,
        sqlstate=None,
        finished=None,
        state=StateView("n=1", "1"),
        holder=holder,
        vtime=None,
        vclock="-",
        wall_ms=0.0,
        violations=(),
    )


def test_long_labels_keep_their_column_and_holders_show_when_there_are_any() -> None:
    short = timeline_line(_event("T+3"))
    assert short.startswith("  T+3   a: write -> ok")
    assert short.endswith("| n=1  holder: -")
    wide = timeline_line(_event("T+10m30s"), width=9, holders=False)
    assert wide.startswith("  T+10m30s a: write -> ok")
    assert wide.endswith("| n=1")


def test_saved_file_names_hold_only_plain_characters() -> None:
    v = Violation("no-lost-update", 3, "T+3", "a", ("a",), "lost", cause="write by a/b c")
    assert v.slug == "no-lost-update--write_by_a--b_c"
