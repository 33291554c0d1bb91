"""A run's view as one self-contained HTML page: swimlanes drawn in SVG.

The page carries its data (the views, as JSON), its stylesheet and its script
inline; it loads nothing, so it opens from disk years later, and its content
security policy forbids it to fetch anything. The script draws one lane per
actor, a box per step from sending it to its completion (a waiting span
hatched, naming the sessions it waited on), outages and faults as marks, the
watched state and its holder after every event, and each violation at its
event; clicking a step shows its statement, arguments and result.

Example::

    write([build(title, path, outcome, verdict)], check_target("t.html"))
"""

from __future__ import annotations

import html
import json
from dataclasses import asdict
from importlib.resources import files
from pathlib import Path

from racesim.files import check_target, save
from racesim.report.view import RunView

__all__ = ["check_target", "page", "write"]

_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline';"
    " img-src data:; base-uri 'none'; form-action 'none'"
)


def _asset(name: str) -> str:
    return files("racesim.report").joinpath(name).read_text(encoding="utf-8")


def _json(views: list[RunView]) -> str:
    """The views as JSON that is safe inside a ``<script>`` element."""
    text = json.dumps([asdict(v) for v in views], ensure_ascii=False, default=str)
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def page(views: list[RunView], heading: str = "") -> str:
    """The HTML page showing ``views`` (one section per run)."""
    if not heading:
        heading = views[0].title if len(views) == 1 else f"{len(views)} runs"
    title = html.escape(f"racesim: {heading}")
    runs = "one run" if len(views) == 1 else f"{len(views)} runs"
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{_POLICY}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="racesim">
<title>{title}</title>
<style>
{_asset("page.css")}
</style>
</head>
<body>
<header class="page-head"><h1>racesim swimlane report · {runs}</h1></header>
<main id="runs"><p class="noscript">This report draws its swimlanes with JavaScript;
the events are listed below as data.</p></main>
<script type="application/json" id="racesim-data">{_json(views)}</script>
<script>
{_asset("page.js")}
</script>
</body>
</html>
"""


def write(views: list[RunView], path: Path, heading: str = "") -> Path:
    """Write the page of ``views`` to ``path`` (atomically); return the path."""
    return save(page(views, heading), path)
