"""The far side of a spread exploration: runs on an execnet gateway (``popen``,
``socket=HOST:PORT``, ``ssh=HOST``), where racesim must be installed.

The coordinator (:mod:`racesim.explore.distribute`) sends this module's source
with ``remote_exec``; it then talks over the channel in plain values:

1. it receives the setup ``{"pg", "dsn", "system", "store"}``, brings up its own
   PostgreSQL as a run would (a throwaway cluster, or ``dsn``), and answers
   ``{"ready": True, "where": ...}`` or ``{"ready": False, "error": ...}``;
2. then, per part, it receives the part's explore options (a dict), explores into
   a folder of its own and answers what it found: the files of each
   counterexample as bytes, its size, its timeline as text, and the summary; a
   part that fails answers ``{"error": ...}``;
3. ``None`` ends it (its databases and cluster are removed).
"""

from __future__ import annotations

import io
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

from racesim.model.outcome import Outcome
from racesim.model.verdict import Verdict
from racesim.report.text import Reporter
from racesim.report.view import RunView

if TYPE_CHECKING:
    from racesim.engine.pool import SessionPool
    from racesim.provision.databases import Databases
    from racesim.system import System

__all__ = ["serve"]


def serve(channel: Any) -> None:
    """Answer the coordinator on ``channel`` until it sends ``None``."""
    from racesim.errors import RacesimError
    from racesim.provision.provide import mask_dsn
    from racesim.runner import databases
    from racesim.system import resolve

    setup = channel.receive()
    notes: list[str] = []
    where = f"{socket.gethostname()} pid {os.getpid()}"
    try:
        system = resolve(setup["system"])
        needs = system.variant(setup["store"]).database
        context = (
            databases(setup["pg"], setup["dsn"], system, say=notes.append)
            if needs
            else nullcontext()
        )
        with context as dbs, ExitStack() as kept:
            channel.send({"ready": True, "where": where, "notes": notes})
            pool = None
            while True:
                part = channel.receive()
                if part is None:
                    break
                try:
                    if pool is None and dbs is not None:
                        pool = kept.enter_context(_pool(dbs, system, setup["store"]))
                    channel.send(_part(part, setup, dbs, system, pool))
                except RacesimError as exc:
                    channel.send({"error": mask_dsn(str(exc).splitlines()[0])})
    except RacesimError as exc:
        channel.send({"ready": False, "error": mask_dsn(" ".join(str(exc).split()))})


@contextmanager
def _pool(dbs: Databases, system: System, store: str) -> Iterator[SessionPool]:
    """One database and its sessions for all of a worker's parts (each schedule
    starts from a reset, as on a fresh database): a part costs no database made and
    no sessions opened."""
    from racesim.engine.pool import SessionPool

    name = dbs.create()
    try:
        with SessionPool(dbs.server.conninfo(name), store, system) as pool:
            yield pool
    finally:
        dbs.drop(name)


def _part(
    part: dict[str, Any],
    setup: dict[str, Any],
    dbs: Any,
    system: System,
    pool: SessionPool | None,
) -> dict[str, Any]:
    from racesim.explore.run import ExploreOptions, explore
    from racesim.explore.shrink import size

    folder = Path(tempfile.mkdtemp(prefix="racesim-part-"))
    try:
        reporter = _Capture()
        opts = ExploreOptions(
            store=setup["store"],
            seed=part["seed"],
            budget=part["budget"],
            max_examples=part["max_examples"],
            strategy=part["strategy"],
            out=folder,
            profile=part["profile"],
            shard=(part["shard"][0], part["shard"][1]),
            config=part["config"],
            system=system,
            html=part["html"],
            example_db=part["example_db"],
            clock_moves=part["clock_moves"],
            split=part["split"],
            subtree=part["subtree"],
        )
        result = explore(opts, dbs, reporter, pool=pool)
        if part["export_spec"] and dbs is not None:
            from racesim.explore.export import export_found

            export_found(result, dbs, system, setup["store"], reporter)
        found = []
        for key in sorted(result.found):
            path = result.files[key]
            found.append(
                {
                    "key": key,
                    "size": list(size(result.found[key])[:4]),
                    "steps": result.found[key].steps,
                    "name": path.name,
                    "path": str(path),
                    "files": _files(folder, path.stem),
                    "timeline": reporter.timelines.get(str(path), ""),
                }
            )
        flaky = [
            {"key": key, "line": line, "files": _files(folder, result.files[key].stem)}
            for key, line in sorted(result.flaky.items())
            if key in result.files
        ]
        return {
            "schedules": result.schedules,
            "skipped": result.skipped,
            "complete": result.complete,
            "seconds": result.seconds,
            "summary": result.summary,
            "found": found,
            "flaky": flaky,
            "subtrees": result.subtrees,
        }
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _files(folder: Path, stem: str) -> list[tuple[str, bytes]]:
    """The files the part wrote for one counterexample (scenario, page, .spec)."""
    return [
        (p.name, p.read_bytes())
        for p in sorted(folder.iterdir())
        if p.is_file() and not p.is_symlink() and p.name.startswith(stem + ".")
    ]


class _Capture(Reporter):
    """A reporter that keeps each counterexample's timeline by its file's path."""

    def __init__(self) -> None:
        super().__init__(out=io.StringIO(), err=io.StringIO())
        self.timelines: dict[str, str] = {}

    def run(self, title: str, path: str, outcome: Outcome, verdict: Verdict) -> RunView:
        saved = self.out
        self.out = io.StringIO()
        try:
            return super().run(title, path, outcome, verdict)
        finally:
            self.timelines[path] = self.timelines.get(path, "") + self.out.getvalue()
            self.out = saved


if __name__ == "__channelexec__":
    serve(channel)  # type: ignore[name-defined]  # noqa: F821
