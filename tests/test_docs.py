"""The README and the pages of docs/ hold together: every relative link (and image)
leads to a file that exists and, with ``#anchor``, to a heading that is on that
page; every page opens with its title, a one-line summary and a link back to the
README; and the README links every page.

Anchors are made from headings as GitHub makes them: lower case, punctuation other
than ``-`` and ``_`` dropped, spaces as ``-``, a repeated heading numbered ``-1``,
``-2``, ... Code (fenced blocks and inline spans) holds no links and no headings.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = (README, *DOCS)

FENCE = re.compile(r"^```.*?^```[ \t]*$", re.MULTILINE | re.DOTALL)
INLINE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6} (.+?)\s*#*$", re.MULTILINE)


def _prose(page: Path) -> str:
    """The page without its code: fenced blocks blanked line for line."""
    text = page.read_text(encoding="utf-8")
    text = FENCE.sub(lambda m: "\n" * m[0].count("\n"), text)
    return text


def _slug(heading: str) -> str:
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for heading in HEADING.findall(_prose(page)):
        slug = _slug(heading)
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        out.add(slug if count == 0 else f"{slug}-{count}")
    return out


def links(page: Path) -> list[tuple[int, str]]:
    """(line, target) of every link and image on the page that is not a URL."""
    text = INLINE.sub(lambda m: " " * len(m[0]), _prose(page))
    return [
        (text.count("\n", 0, m.start()) + 1, m[1])
        for m in LINK.finditer(text)
        if not re.match(r"^[a-z][a-z+.-]*:", m[1])
    ]


def _name(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_every_relative_link_resolves(page: Path) -> None:
    found = links(page)
    assert found or page == README, f"{_name(page)}: no links"
    for line, target in found:
        where = f"{_name(page)}:{line}: {target}"
        path, _, anchor = target.partition("#")
        goal = (page.parent / path).resolve() if path else page
        assert goal.is_relative_to(ROOT), f"{where} leads out of the repository"
        assert goal.exists(), f"{where}: no such file"
        if anchor:
            assert goal.suffix == ".md", f"{where}: an anchor on a page that is not markdown"
            assert anchor in anchors(goal), f"{where}: no heading #{anchor} on {_name(goal)}"


@pytest.mark.parametrize("page", DOCS, ids=_name)
def test_every_page_opens_with_a_title_a_summary_and_the_way_back(page: Path) -> None:
    lines = page.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("# "), f"{_name(page)}: the first line is the page's title"
    assert lines[1] == "" and lines[2] and lines[3] == "", (
        f"{_name(page)}: after the title, a summary of one line and a blank line"
    )
    assert "](../README.md" in lines[4], f"{_name(page)}:5: a link back to the README"


def test_the_readme_links_every_page() -> None:
    targets = {target.partition("#")[0] for _, target in links(README)}
    missing = [_name(p) for p in DOCS if _name(p) not in targets]
    assert not missing, f"README.md links none of {missing}"


def test_the_anchors_are_made_as_github_makes_them() -> None:
    assert _slug("Exporting a run as a `.spec`") == "exporting-a-run-as-a-spec"
    assert _slug("Writing your own race tests (pytest plugin)") == (
        "writing-your-own-race-tests-pytest-plugin"
    )
    assert _slug("Exit statuses") == "exit-statuses"


TOPS = ("harness", "store", "systems", "tests", "scenarios", "examples", "docs", ".ci")


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_every_repository_path_named_exists(page: Path) -> None:
    for m in INLINE.finditer(_prose(page)):
        path = m[0].strip("`").split("::")[0]
        if path.split("/")[0] in TOPS and "/" in path and not re.search(r"[*<]", path):
            assert (ROOT / path).exists(), f"{_name(page)}: `{path}` does not exist"


def test_every_module_the_layout_names_exists() -> None:
    """A ``name.py`` (or ``.css``, ``.js``) on the layout page is a file of a folder its
    paragraph or list item names (``code/``, ``store/``), or of ``harness/``."""
    page = ROOT / "docs" / "layout.md"
    for block in re.split(r"\n\n|\n(?=- )", _prose(page)):
        names = [m[0].strip("`") for m in INLINE.finditer(block)]
        folders = [ROOT / "harness", ROOT]
        folders += [base / n for n in names if n.endswith("/") for base in (ROOT / "harness", ROOT)]
        for name in names:
            if re.fullmatch(r"[\w/]+\.(py|css|js)", name):
                assert any((f / name).is_file() for f in folders), (
                    f"docs/layout.md: `{name}` is in none of {[_name(f) for f in folders]}"
                )


def test_no_sentence_is_said_twice() -> None:
    seen: dict[str, str] = {}
    for page in PAGES:
        prose = re.sub(r"\s+", " ", _prose(page))
        for sentence in re.split(r"(?<=[.;:])\s+", prose):
            if len(sentence) > 60:
                assert sentence not in seen, (
                    f"said on {seen[sentence]} and {_name(page)}: {sentence}"
                )
                seen[sentence] = _name(page)
