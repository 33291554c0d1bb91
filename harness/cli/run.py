"""``racesim run``: scenario files (or folders of them) on each store they name."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from racesim.cli.common import named_system
from racesim.errors import EXIT_FOUND, EXIT_OK, InputError

if TYPE_CHECKING:
    from racesim.report.text import Reporter

__all__ = ["cmd_run"]


def cmd_run(args: argparse.Namespace, reporter: Reporter) -> int:
    from racesim.cli.spec import cmd_run_spec, is_spec

    if any(is_spec(p) for p in args.paths):
        if args.split_commits is not None:
            raise InputError(
                "racesim run: --split-commits applies to scenario files (a .spec runs every"
                " step as written; racesim explore FILE.spec splits them); fix: drop it"
            )
        return cmd_run_spec(args, reporter)
    for flag, given in (("--expected", args.expected), ("--format", args.format)):
        if given is not None:
            raise InputError(f"racesim run: {flag} applies to .spec files; fix: drop {flag}")
    if args.step_timeout is not None:
        raise InputError("racesim run: --step-timeout applies to .spec files; fix: drop it")
    if args.in_database:
        raise InputError("racesim run: --in-database applies to .spec files; fix: drop it")
    from contextlib import nullcontext

    from racesim.cli.export import export_spec, exportable
    from racesim.cli.options import split_agrees
    from racesim.engine.loop import Options
    from racesim.formats.names import escaped
    from racesim.formats.writer import check_target
    from racesim.report import html
    from racesim.runner import load_all, prepared, run_one

    page = html.check_target(args.html) if args.html is not None else None
    spec_out = check_target(args.export_spec, "--export-spec") if args.export_spec else None
    system = named_system(args)
    if args.store is not None and system is not None:
        system.variant(args.store)  # an unknown store is refused before anything runs
    scenarios = load_all(args.paths, system)
    split_agrees(scenarios, args.split_commits)
    systems = {id(s.system): s.system for s in scenarios}
    if args.store is not None and all(args.store not in x.variant_names for x in systems.values()):
        names = sorted({n for x in systems.values() for n in x.variant_names})
        raise InputError(
            f"--store: unknown store {args.store[:40]!r} for the scenarios' systems; choose"
            f" from {', '.join(names)}"
        )
    jobs = [(s, st) for s in scenarios for st in s.stores if not args.store or st == args.store]
    if not jobs:
        raise InputError(f"no scenario names store {args.store}; drop --store or add it to stores")
    if spec_out is not None:
        exportable(jobs)
    views = []
    options = Options(stop_at_first=args.stop_at_first)
    need_pg = any(s.system.variant(st).database for s, st in jobs)
    if not need_pg and (args.dsn is not None or args.pg not in (None, "auto")):
        given = "--dsn" if args.dsn is not None else f"--pg {args.pg}"
        raise InputError(
            f"{given}: every run here is in memory ({', '.join(sorted({st for _, st in jobs}))})"
            f" and needs no PostgreSQL; drop {given} or choose a store that uses the database"
        )
    failed = skipped = 0
    with prepared(args.pg, args.dsn, say=reporter.problem) if need_pg else nullcontext() as made:
        for scenario, store in jobs:
            dbs = made.for_system(scenario.system) if made is not None else None
            result = run_one(scenario, store, dbs, options)
            views.append(reporter.run(scenario.name, scenario.path, result.outcome, result.verdict))
            failed += not result.verdict.matches
            skipped += result.verdict.skipped
            if spec_out is not None and dbs is not None and not result.verdict.skipped:
                reporter.line(f"wrote {escaped(str(export_spec(result, dbs, spec_out)))}")
    if page is not None:
        html.write(views, page)
    reporter.line(
        f"{len(jobs) - failed - skipped} matched, {failed} did not, {skipped} skipped"
        f" ({len(jobs)} runs)"
    )
    return EXIT_FOUND if failed else EXIT_OK
