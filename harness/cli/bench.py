"""``racesim bench``: performance figures against their targets (racesim.bench)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from racesim.errors import EXIT_OK, InputError

if TYPE_CHECKING:
    from racesim.report.text import Reporter

__all__ = ["cmd_bench"]


def cmd_bench(args: argparse.Namespace, reporter: Reporter) -> int:
    from racesim.cli.options import BENCH_REPEAT

    if args.specs is not None and args.what != "spec":
        raise InputError("racesim bench: --specs applies to bench spec; fix: drop it")
    repeat = BENCH_REPEAT if args.repeat is None else args.repeat
    if args.what == "startup":
        from racesim.bench import startup as bench_startup

        for line in bench_startup.run(repeat=repeat):
            reporter.line(line)
        return EXIT_OK
    if args.what == "parallel":
        from racesim.bench import parallel as bench_parallel

        for line in bench_parallel.run(repeat=repeat):
            reporter.line(line)
        return EXIT_OK
    if args.what == "code":
        from racesim.bench import code as bench_code

        for line in bench_code.run(args.pg, args.dsn, repeat=repeat):
            reporter.line(line)
        return EXIT_OK
    if args.what == "workers":
        from racesim.bench import workers as bench_workers

        for line in bench_workers.run(args.pg, args.dsn, repeat=args.repeat or 1):
            reporter.line(line)
        return EXIT_OK
    if args.what == "proxy":
        from racesim.bench import proxy as bench_proxy

        for line in bench_proxy.run(args.pg, args.dsn, repeat=repeat):
            reporter.line(line)
        return EXIT_OK
    if args.what == "spec":
        from racesim.bench import spec as bench_spec

        for line in bench_spec.run(
            args.pg, args.dsn, repeat=repeat, folder=args.specs, per_process=args.per_process
        ):
            reporter.line(line)
        return EXIT_OK
    if args.what == "explore":
        from racesim.bench import explore as bench_explore

        for line in bench_explore.run(
            args.pg, args.dsn, seeds=5 if args.seeds is None else args.seeds
        ):
            reporter.line(line)
        return EXIT_OK
    from racesim.bench import engine as bench_engine

    for line in bench_engine.run(args.pg, args.dsn, repeat=repeat):
        reporter.line(line)
    return EXIT_OK
