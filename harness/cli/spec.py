"""``racesim run FILE.spec``: isolation specs, printed as isolationtester prints them."""

from __future__ import annotations

import argparse
import contextlib
import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from racesim.errors import EXIT_FOUND, EXIT_OK, InputError
from racesim.formats.names import escaped, file_part
from racesim.provision.databases import Databases
from racesim.provision.provide import Server, provide
from racesim.report.text import Reporter, byte_writer
from racesim.spec.databases import spec_databases as spec_databases
from racesim.spec.parse import Spec, load
from racesim.spec.run import Sink, SpecAborted, run_spec

if TYPE_CHECKING:  # the rest loads only when asked for (--html, --expected)
    from racesim.report.view import RunView
    from racesim.spec.history import Recorder

__all__ = ["cmd_run_spec", "is_spec", "spec_databases"]

MAX_EXPECTED_BYTES = 64 * 1024 * 1024
SETTLE = 0.2
"""Seconds a spec's closed sessions get to leave its database before it is dropped
(twice the 100 ms the server itself would wait before looking again)."""


def is_spec(path: str) -> bool:
    return path.endswith(".spec")


@contextmanager
def _place(args: argparse.Namespace) -> Iterator[Databases | Server]:
    """Where specs run: fresh databases of racesim's (dropped afterwards), or, with
    ``--in-database``, the database the DSN names, as isolationtester runs."""
    if getattr(args, "in_database", False):
        with provide(args.pg, args.dsn) as server:
            if server.source != "dsn":
                raise InputError(
                    f"--in-database: racesim's own {server.source} server has no database of"
                    " yours to run in; fix: give --dsn naming the database (or drop --in-database)"
                )
            yield server
    else:
        with spec_databases(args.pg, args.dsn) as dbs:
            yield dbs


def step_timeout(value: str | None) -> float | None:
    """``--step-timeout`` in seconds; None when not given (the server's isolationtester
    bound then applies, see :func:`racesim.spec.run.step_timeout_from_env`)."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds > 0 or seconds != seconds or seconds > 86_400:
        raise InputError(
            f"--step-timeout: expected seconds between 0 and 86400, got {value!r}; "
            "fix: e.g. --step-timeout 300"
        )
    return seconds


def _options(args: argparse.Namespace) -> None:
    refused = [
        (getattr(args, "store", None), "--store"),
        (getattr(args, "stop_at_first", False), "--stop-at-first"),
        (getattr(args, "system", None), "--system"),
        (getattr(args, "export_spec", None), "--export-spec"),
    ]
    problems = [
        f"racesim run: {flag} applies to scenario files, not .spec files; fix: drop {flag}"
        for given, flag in refused
        if given
    ]
    others = [p for p in args.paths if not is_spec(p)]
    if others:
        problems.append(
            f"racesim run: {others[0]} is not a .spec file; fix: run .spec files and "
            "scenario files in separate commands"
        )
    if args.expected and len(args.paths) != 1:
        problems.append("racesim run: --expected compares one spec; fix: give one .spec file")
    if args.expected and (args.json or args.format == "timeline"):
        problems.append(
            "racesim run: --expected compares isolationtester's output; fix: drop --json "
            "or --format timeline"
        )
    if args.json and args.format == "timeline":
        problems.append("racesim run: --json and --format timeline exclude each other")
    if problems:
        raise InputError(problems)


def _read_expected(path: str) -> bytes:
    p = Path(path)
    try:
        if p.is_dir():
            raise InputError(f"--expected {p}: is a folder; fix: give the .out file")
        if p.stat().st_size > MAX_EXPECTED_BYTES:
            raise InputError(f"--expected {p}: too big for an expected output; fix: check the path")
        return p.read_bytes()
    except OSError as exc:
        raise InputError(
            f"--expected {p}: cannot read ({exc.strerror}); fix: check the path"
        ) from None


def cmd_run_spec(args: argparse.Namespace, reporter: Reporter) -> int:
    """Run the .spec files in ``args.paths``; exit 1 on a difference or an aborted spec."""
    _options(args)
    timeout = step_timeout(args.step_timeout)
    problems: list[str] = []
    specs: list[Spec] = []
    for path in args.paths:
        try:
            specs.append(load(path))
        except InputError as exc:
            problems.extend(exc.problems)
    if problems:
        raise InputError(problems)
    expected = _read_expected(args.expected) if args.expected else None
    page = None
    if args.html is not None:
        from racesim.formats.writer import check_target

        page = check_target(args.html)
    failed = 0
    pages: list[RunView] = []
    with _place(args) as dbs:
        for spec in specs:
            rendered = args.json or args.format == "timeline"
            shown = reporter.view if rendered and expected is None else None
            recorder: Recorder | None = None
            if page is not None or shown:  # events are recorded only for these
                from racesim.spec.history import Recorder

                recorder = Recorder(spec.path, shown)
            if expected is not None:
                bad, completed = _compare(
                    spec, dbs, timeout, expected, args.expected, reporter, recorder
                )
            else:
                completed = _show(spec, dbs, timeout, args, reporter, recorder)
                bad = not completed
            failed += bad
            if page is not None and recorder is not None:
                pages += recorder.views
    if page is not None:
        from racesim.report import html

        html.write(pages, page)
    return EXIT_FOUND if failed else EXIT_OK


def run_on(spec: Spec, dbs: Databases | Server, sink: Sink, timeout: float | None) -> bool:
    """Run ``spec`` on a fresh database of ``dbs`` (or in the database a server's DSN
    names); False if it aborted."""
    if isinstance(dbs, Server):
        try:
            run_spec(spec, dbs.conninfo(), sink, step_timeout=timeout)
            return True
        except SpecAborted:
            return False
    name = dbs.create()
    try:
        run_spec(spec, dbs.server.conninfo(name), sink, step_timeout=timeout)
        return True
    except SpecAborted:
        return False
    finally:
        dbs.drop(name, settle=SETTLE)


def _compare(
    spec: Spec,
    dbs: Databases | Server,
    timeout: float | None,
    expected: bytes,
    name: str,
    reporter: Reporter,
    recorder: Recorder | None = None,
) -> tuple[bool, bool]:
    """(the output differs, the spec ran to its end)."""
    buf = io.BytesIO()
    completed = run_on(spec, dbs, Sink(buf.write, buf.write, recorder), timeout)
    if recorder is not None:
        recorder.finish(completed)
    from racesim.spec.compare import diff

    lines = list(diff(expected, buf.getvalue(), name, f"racesim run {spec.path}"))
    if not lines:
        reporter.line(f"{escaped(spec.path)}: output matches {name}")
        return False, completed
    reporter.line("".join(lines).rstrip("\n"))
    reporter.line(f"{escaped(spec.path)}: output differs from {name}")
    return True, completed


def _show(
    spec: Spec,
    dbs: Databases | Server,
    timeout: float | None,
    args: argparse.Namespace,
    reporter: Reporter,
    recorder: Recorder | None = None,
) -> bool:
    """Run ``spec`` and print isolationtester's output, or (``--json``, ``--format
    timeline``) each permutation as the run it was, as the recorder shows it (with the
    timeline, what isolationtester writes to stderr still goes to stderr); True if it
    ran to its end."""
    captured = io.BytesIO()
    if args.json:
        sink = Sink(captured.write, captured.write, recorder)
    elif args.format == "timeline":  # isolationtester's stderr lines stay on stderr
        sink = Sink(captured.write, byte_writer(reporter.err), recorder)
    else:
        sink = Sink(byte_writer(reporter.out), byte_writer(reporter.err), recorder)
    completed = run_on(spec, dbs, sink, timeout)
    if recorder is not None:
        recorder.finish(completed)
    if args.json:
        reporter.record(
            {
                "type": "spec",
                "path": spec.path,
                "completed": completed,
                "output": captured.getvalue().decode("utf-8", "replace"),
            }
        )
    return completed


def _explore_parser() -> argparse.ArgumentParser:
    from racesim.cli.common import Parser as _Parser

    p = _Parser(
        prog="racesim explore",
        description="Run interleavings of a .spec's steps beyond its permutation lines and"
        " check SQL invariants after every step.",
    )
    p.add_argument("spec", metavar="FILE.spec")
    p.add_argument("--invariants", metavar="FILE", help="invariants file (default FILE.spec.toml)")
    p.add_argument(
        "--strategy",
        default="exhaustive",
        help="exhaustive (default), through an isolationtester-faithful runner; hypothesis"
        " or pct, through the spec's system (as for any system)",
    )
    p.add_argument("--seed", type=int, help="seed of the hypothesis and pct strategies (default 0)")
    p.add_argument("--max-examples", type=int, default=1000, help="interleavings to try at most")
    p.add_argument(
        "--out", help="folder for the .spec of a finding (default .cache/racesim/counterexamples)"
    )
    p.add_argument("--step-timeout", metavar="SECONDS", help="bound on one step (default 30)")
    p.add_argument("--dsn", help="use this PostgreSQL server (or set RACESIM_DSN)")
    p.add_argument("--pg", default="auto", choices=["auto", "dsn", "local", "docker"])
    p.add_argument("--pg-version", metavar="N", help="PostgreSQL major version (e.g. 15, 18)")
    return p


def cmd_explore_spec(argv: list[str], reporter: Reporter) -> int:
    """``racesim explore FILE.spec``: search interleavings for a broken SQL invariant."""
    from racesim.errors import EXIT_FLAKY
    from racesim.formats.writer import save
    from racesim.spec.explore import Search
    from racesim.spec.invariants import companion, load_invariants

    args = _explore_parser().parse_args(argv)
    problems = []
    if args.strategy not in ("exhaustive", "hypothesis", "pct"):
        fix = "; fix: --strategy pct draws seeded random schedules" * (args.strategy == "random")
        problems.append(
            f"--strategy: expected exhaustive, hypothesis or pct, got {args.strategy[:40]!r}{fix}"
        )
    if args.strategy in ("hypothesis", "pct") and args.step_timeout is not None:
        problems.append(
            f"--step-timeout: --strategy {args.strategy} runs the spec's system, whose steps"
            " racesim's engine bounds; fix: drop --step-timeout or use exhaustive"
        )
    if args.seed is not None and args.strategy == "exhaustive":
        problems.append(
            "--seed: the exhaustive strategy draws nothing; fix: drop --seed or use"
            " hypothesis or pct"
        )
    args.seed = args.seed or 0
    if args.max_examples < 1:
        problems.append("--max-examples: expected 1 or more")
    if not is_spec(args.spec):
        problems.append(f"{args.spec}: not a .spec file; fix: give FILE.spec")
    if problems:
        raise InputError(problems)
    if args.pg_version is not None:
        from racesim.cli.options import pin_version

        pin_version(args.pg_version, args.pg, args.dsn)
    spec = load(args.spec)
    inv_path = Path(args.invariants) if args.invariants else companion(Path(args.spec))
    if not args.invariants and not inv_path.exists():
        raise InputError(
            f"{args.spec}: no invariants; fix: write {inv_path} with [invariants] and "
            'name = "SELECT ..." lines (queries returning no rows while each holds), or pass --invariants'
        )
    invariants = load_invariants(inv_path)
    out_dir = Path(args.out) if args.out else Path(".cache/racesim/counterexamples")
    from racesim.cli.common import writable_folder

    for made in writable_folder(out_dir, "--out", given=bool(args.out)):
        with contextlib.suppress(OSError):  # checked now; a finding's save makes it again
            made.rmdir()
    if args.strategy in ("hypothesis", "pct"):
        from racesim.cli.spec_system import explore_system

        return explore_system(args, Path(args.spec), inv_path, out_dir, reporter)
    timeout = step_timeout(args.step_timeout) or 30.0
    search = Search(spec, invariants, args.max_examples, timeout)
    with spec_databases(args.pg, args.dsn) as dbs:
        name = dbs.create()
        try:
            finding = search.run(dbs.server.conninfo(name))
        finally:
            dbs.drop(name)
    for flaky in search.flaky:
        perm = " ".join(p.name for p in flaky.permutation.steps)
        shown = [
            f"{o.broken.name} broken after step {o.at + 1}" if o.broken else "held"
            for o in (flaky.first, flaky.second)
        ]
        reporter.line(f"flaky: permutation {perm}: first run {shown[0]}, second run {shown[1]}")
    if finding is None:
        reporter.line(
            f"{escaped(spec.path)}: {search.tried} interleavings tried ({search.invalid} not possible: a"
            f" step due while its session waited"
            + (
                f"; {search.reordered} more skipped as reorderings of independent steps"
                if search.reordered
                else ""
            )
            + "), no invariant broken"
            + ("" if search.tried < args.max_examples else "; --max-examples reached")
        )
        return EXIT_FLAKY if search.flaky else EXIT_OK
    assert finding.outcome.broken is not None
    stem = file_part(Path(spec.path).name.removesuffix(".spec"))
    saved = save(finding.text, out_dir / f"{stem}-{file_part(finding.outcome.broken.name)}.spec")
    reporter.line(
        f"{escaped(spec.path)}: invariant {escaped(finding.outcome.broken.name)} broken after {search.tried} interleavings"
    )
    reporter.line("  found:  permutation " + " ".join(p.name for p in finding.original.steps))
    reporter.line("  shrunk: permutation " + " ".join(p.name for p in finding.permutation.steps))
    reporter.line(f"  returned {finding.outcome.how_many}")
    for row in finding.outcome.rows:
        reporter.line(f"  row: {row}")
    reporter.line(
        f"  saved {escaped(str(saved))} (isolationtester reproduces it: the check step prints the rows)"
    )
    return EXIT_FOUND
