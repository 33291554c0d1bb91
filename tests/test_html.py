"""The HTML swimlane page: self-contained, and drawn right by a real (headless) Chromium."""

from __future__ import annotations

import base64
import json
import re
import struct
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from browser import DOM, DevTools, dump_dom, print_pdf, screenshot
from spec_support import SIMPLE

from racesim.checks.invariants import check
from racesim.cli.main import main
from racesim.model.history import Event, History
from racesim.model.outcome import Outcome
from racesim.model.verdict import judge
from racesim.provision.provide import Server
from racesim.report import html
from racesim.report.view import RunView, build
from racesim.store import MarkResult
from racesim.store.invariants import Marker
from racesim.store.show import SHOW

ROOT = Path(__file__).parent.parent
SCENARIOS = ROOT / "scenarios"
T0 = SCENARIOS / "t0-t4-cron-wipes-user.toml"


def _view(events: list[Event], title: str = "hand-made") -> RunView:
    history = History("hand.toml", "legacy", SHOW, events)
    outcome = Outcome(history, check(events))
    return build(title, "hand.toml", outcome, judge(outcome, None))


def _run_with_page(
    scenario: Path, store: str, page: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> list[dict[str, object]]:
    """``racesim run --json --html``: the JSON lines' events (the history) and the page."""
    argv = ["run", str(scenario), "--store", store, "--json", "--html", str(page)]
    main([*argv, "--dsn", pg_server.conninfo()])
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    return [r for r in records if r["type"] == "event"]


def _png_size(png: Path) -> tuple[int, int]:
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


# -- the page as a file -----------------------------------------------------


def test_page_loads_nothing_from_anywhere() -> None:
    text = html.page([_view([Event(0, "step", "user", "mark", result=MarkResult(ok=True))])])
    assert "Content-Security-Policy" in text and "default-src 'none'" in text
    for outside in ("<link", " src=", "href=", "@import", "url(http", "fetch(", "XMLHttpRequest"):
        assert outside not in text, outside
    urls = {part.split('"')[0] for part in text.split("://")[1:]}
    assert urls == {"www.w3.org/2000/svg"}  # the SVG namespace name, never fetched


def test_data_cannot_break_out_of_its_script() -> None:
    hostile = "</script><script>alert(1)</script><!--"
    text = html.page([_view([Event(0, "step", "user", "mark", error=hostile)], title=hostile)])
    assert hostile not in text
    assert text.count("</script>") == 2  # the data's and the code's own
    data = text.split('id="racesim-data">')[1].split("</script>")[0]
    assert json.loads(data)[0]["events"][0]["error"] == hostile


def test_page_target_is_checked_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope" / "t.html"
    assert main(["run", str(T0), "--html", str(missing), "--pg", "dsn"]) == 2
    assert f"--html {missing}: folder {missing.parent} does not exist" in capsys.readouterr().err
    assert main(["run", str(T0), "--html", str(tmp_path), "--pg", "dsn"]) == 2
    assert "names a folder" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


# -- in the browser ---------------------------------------------------------


def test_t0_t4_on_legacy_shows_the_foreign_clear(
    pg_server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = tmp_path / "t.html"
    events = _run_with_page(T0, "legacy", page, pg_server, capsys)
    dom = DOM(dump_dom(page, tmp_path / "profile"))

    lanes = [e.attrs["data-actor"] for e in dom.having("lane", "g")]
    assert lanes == list(dict.fromkeys(str(e["actor"]) for e in events if e["kind"] != "clock"))
    boxes = dom.having("box", "g")
    assert len(boxes) == sum(e["kind"] in ("step", "wait") for e in events)
    marks = dom.having("violation-sign", "g")
    assert len(marks) == sum(len(e["violations"]) for e in events)  # type: ignore[arg-type]

    # The cron run's T+3 clear: its box is marked, and so is the foreign clear.
    t3 = next(i for i, e in enumerate(events) if e["label"] == "T+3")
    assert (events[t3]["actor"], events[t3]["call"]) == ("cron", "clear")
    [clear] = [b for b in boxes if b.attrs["data-start"] == str(t3)]
    assert clear.attrs["data-actor"] == "cron" and "violated" in clear.classes
    foreign = next(m for m in marks if m.attrs["data-invariant"] == "no-foreign-clear")
    assert foreign.attrs["data-event"] == str(t3)
    assert "no-foreign-clear: cron cleared the marker of user with clear" in foreign.text
    listed = dom.having("violations", "ol")[0].text
    assert "no-foreign-clear" in listed and "at T+3" in listed
    # The state row under the lanes: the marker is gone, racesim still sees user holding it.
    cells = [c for c in dom.having("state", "g") if c.attrs.get("data-event") == str(t3)]
    assert "marker: -" in cells[0].text and cells[1].text.startswith("user")

    png = screenshot(page, tmp_path / "profile2", tmp_path / "t.png")
    assert _png_size(png) == (1500, 900)
    assert png.stat().st_size > 20_000  # drawn, not a blank page

    pdf = print_pdf(page, tmp_path / "profile3", tmp_path / "t.pdf").read_bytes()
    pages = len(re.findall(rb"/Type\s*/Page[^s]", pdf))
    assert pdf.startswith(b"%PDF") and pages >= 2  # the lanes, then the event table


def test_waiting_step_names_the_session_it_waits_on(
    pg_server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = tmp_path / "wait.html"
    scenario = SCENARIOS / "maintenance-lock-blocks-mark.toml"
    events = _run_with_page(scenario, "legacy", page, pg_server, capsys)
    dom = DOM(dump_dom(page, tmp_path / "profile"))
    assert len(dom.having("box", "g")) == sum(e["kind"] in ("step", "wait") for e in events)
    [waited] = dom.having("waited", "g")
    assert waited.attrs["data-actor"] == "user" and waited.attrs["data-call"] == "mark"
    assert "waits on ops" in waited.text
    done = next(i for i, e in enumerate(events) if e["kind"] == "done")
    assert waited.attrs["data-end"] == str(done)
    assert dom.having("waiting", "rect")


def test_two_hundred_events_stay_drawn_and_scroll(tmp_path: Path) -> None:
    start = datetime(2026, 1, 1, 12, tzinfo=UTC)
    events = []
    for i in range(200):
        actor = f"run-{i % 6}"
        marker = Marker(start if i % 2 else None)
        when = start + timedelta(seconds=i)
        events.append(Event(i, "step", actor, "mark", f"T+{i}", state=marker, vtime=when))
    page = html.write([_view(events)], tmp_path / "long.html")
    dom = DOM(dump_dom(page, tmp_path / "profile"))
    assert len(dom.having("box", "g")) == 200 and len(dom.having("lane", "g")) == 6
    [svg] = [e for e in dom.elements if e.tag == "svg" and "lanes" in e.classes]
    assert int(float(svg.attrs["width"])) >= 200 * 30  # columns stay wide enough to read
    assert len(dom.having("violation-sign", "g")) == len(check(events).violations)
    assert screenshot(page, tmp_path / "profile2", tmp_path / "long.png").stat().st_size > 20_000


def test_explore_writes_a_page_next_to_each_counterexample(
    pg_server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["explore", "--store", "legacy", "--strategy", "exhaustive", "--html"]
    assert main([*argv, "--out", str(tmp_path), "--dsn", pg_server.conninfo()]) == 1
    saved = sorted(tmp_path.glob("*.toml"))
    assert saved and all(p.with_suffix(".html").is_file() for p in saved)
    assert f"page: {saved[0].with_suffix('.html')}" in capsys.readouterr().out
    dom = DOM(dump_dom(saved[0].with_suffix(".html"), tmp_path / "profile"))
    assert dom.having("violation-sign", "g") and dom.having("box", "g")

    page = tmp_path / "replay.html"
    assert main(["replay", str(saved[0]), "--html", str(page), "--dsn", pg_server.conninfo()]) == 1
    replayed = DOM(dump_dom(page, tmp_path / "profile2"))
    assert replayed.having("violation-sign", "g")


def test_folding_zooming_the_time_axis_and_details(
    pg_server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = tmp_path / "t.html"
    events = _run_with_page(T0, "legacy", page, pg_server, capsys)
    t3 = next(i for i, e in enumerate(events) if e["label"] == "T+3")
    with DevTools(page, tmp_path / "profile") as b:
        b.wait_for("document.body && document.body.dataset.drawn === '1'")
        boxes = b.js("document.querySelectorAll('g.box').length")
        labels = "document.querySelectorAll('g.lane[data-actor=cron] g.box text.call').length"
        assert b.js(labels) == 4

        b.click("text.lane-name")  # the first lane, cron-prev, folds
        assert b.js("document.querySelector('text.lane-name').getAttribute('aria-expanded')") == (
            "false"
        )
        assert b.js("document.querySelectorAll('g.lane[data-actor=cron-prev] text').length") == 0
        assert b.js("document.querySelectorAll('g.box').length") == boxes  # folded, not hidden
        b.click("button[aria-label='zoom in']")
        width = "Number(document.querySelector('svg.lanes').getAttribute('width'))"
        before = b.js(width)
        b.click("button[aria-label='zoom in']")
        assert b.js(width) > before * 1.3

        b.click("input[value=vtime]")
        assert b.js("document.querySelector('.names .row-name').textContent") == "virtual time"
        assert b.js(labels) == 4  # redrawn on the other axis, the same boxes

        b.click(f"g.box[data-start='{t3}']")
        details = b.js("document.querySelector('aside.details').textContent")
        assert "T+3  cron: clear" in details
        assert "UPDATE recommendations_state SET last_collection_started_at = NULL" in details
        assert "cron cleared the marker of user with clear" in details
        shot = b.send("Page.captureScreenshot", format="png")["data"]
        assert len(base64.b64decode(shot)) > 20_000


SPEC_WITH_A_WAIT = SIMPLE + "permutation s2u s1u s1c\n"


def test_a_spec_run_is_drawn_one_section_per_permutation(
    pg_server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "wait.spec"
    spec.write_text(SPEC_WITH_A_WAIT)
    page = tmp_path / "spec.html"
    assert main(["run", str(spec), "--html", str(page), "--dsn", pg_server.conninfo()]) == 0
    printed = capsys.readouterr().out
    assert "step s2u: UPDATE t SET id = 3 WHERE id = 1 RETURNING id; <waiting ...>" in printed
    dom = DOM(dump_dom(page, tmp_path / "profile"))
    titles = [e.text for e in dom.elements if e.tag == "h2"]
    assert [t for t in titles if "permutation" in t] == [
        "permutation 1: s1u s2u s1c",
        "permutation 2: s2u s1u s1c",
    ]
    lanes = [e.attrs["data-actor"] for e in dom.having("lane", "g")]
    assert lanes == ["s1", "s2", "s2", "s1"]  # each section's lanes, in order of first step
    assert len(dom.having("box", "g")) == 6
    [waited] = dom.having("waited", "g")
    assert (waited.attrs["data-actor"], waited.attrs["data-call"]) == ("s2", "s2u")
    assert "waits on s1" in waited.text
    assert not dom.having("state", "g")  # a spec has no watched state: no state rows
