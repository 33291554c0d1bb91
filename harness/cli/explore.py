"""The ``explore`` and ``replay`` subcommands (kept apart so ``cli.py`` stays a thin face)."""

from __future__ import annotations

import argparse
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

from racesim.cli.common import named_system, system_of
from racesim.engine.loop import Options
from racesim.errors import EXIT_FLAKY, EXIT_FOUND, EXIT_OK, InputError
from racesim.explore.run import DEFAULT_OUT, ExploreOptions, explore, parse_budget, parse_shard
from racesim.report.text import Reporter

if TYPE_CHECKING:
    from racesim.formats.scenario import Scenario
    from racesim.runner import Result
    from racesim.system import System

__all__ = ["cmd_explore", "cmd_replay"]


def options_from(args: argparse.Namespace, system: System) -> ExploreOptions:
    """Check the command line's explore options (to explore ``system``); InputError (one
    line) when bad."""
    if args.max_examples is not None and args.max_examples < 1:
        raise InputError(f"--max-examples: expected 1 or more, got {args.max_examples}")
    if args.seed is not None and args.strategy == "exhaustive":
        raise InputError(
            "--seed: the exhaustive strategy draws nothing; fix: drop --seed or use"
            " --strategy hypothesis or pct"
        )
    seed = 0 if args.seed is None else args.seed
    if not 0 <= seed < 2**63:
        raise InputError(f"--seed: expected 0 to 2**63-1, got {seed}")
    shard = parse_shard(args.shard)
    if shard[1] > 1 and args.strategy != "exhaustive":
        raise InputError(
            "--shard: only the exhaustive strategy can be split; add "
            "--strategy exhaustive or drop --shard"
        )
    moves = getattr(args, "clock_moves", None)
    if moves is not None and not 0 <= moves <= 3:
        raise InputError(f"--clock-moves: expected 0 to 3, got {moves}")
    if moves and args.strategy != "exhaustive":
        raise InputError(
            f"--clock-moves: only the exhaustive strategy takes it ({args.strategy} draws"
            " its own clock moves); drop it or add --strategy exhaustive"
        )
    example_db: bool | str = True
    if args.example_db is not None:
        from racesim.explore.shared import check_url

        example_db = check_url(args.example_db, args.strategy)
    return ExploreOptions(
        store=args.store,
        seed=seed,
        budget=parse_budget(args.budget) if args.budget else None,
        max_examples=args.max_examples,
        strategy=args.strategy,
        out=Path(args.out) if args.out else DEFAULT_OUT,
        profile=args.profile,
        shard=shard,
        config=args.config,
        system=system,
        html=args.html,
        example_db=example_db,
        clock_moves=moves,
    )


def configurations() -> str:
    """Every installed system's configurations (``--config``), a line per system, with
    each strategy's default."""
    from racesim.system import registered, resolve

    lines = ["configurations (--config), by installed system (--system):"]
    for name in sorted(registered()):
        try:
            system = resolve(name)
        except InputError:
            continue
        names = ", ".join(system.configs) or "(none)"
        defaults = ", ".join(f"{s}: {c}" for s, c in sorted(system.defaults.items()))
        lines.append(f"  {name}: {names}" + (f" (defaults: {defaults})" if defaults else ""))
    lines.append(
        "  any other system: its own; without --config, the strategy's default or runs"
        " drawn from the system's run kinds"
    )
    return "\n".join(lines)


def cmd_explore(args: argparse.Namespace, reporter: Reporter) -> int:
    """``racesim explore``: exit 1 when a violation was found (and reproduced), 3 when
    every violation seen failed to reproduce (flaky), 0 when none."""
    from racesim.runner import databases

    system = system_of(args)
    opts = options_from(args, system)
    database = system.variant(opts.store).database  # an unknown store is refused first
    system.config(opts.config, opts.strategy)  # and so is an unknown --config
    if args.export_spec:
        from racesim.spec.export import refuse_in_memory

        refuse_in_memory(system, opts.store)
    from racesim.explore.distribute import gateway_specs

    specs = gateway_specs(args.workers, args.tx)
    if specs:
        from racesim.explore.distribute import spread
        from racesim.system import DEFAULT_SYSTEM

        return spread(
            opts,
            specs,
            pg=args.pg,
            dsn=args.dsn,
            reporter=reporter,
            export_spec=args.export_spec,
            system=args.system if args.system is not None else DEFAULT_SYSTEM,
        )
    with (
        databases(args.pg, args.dsn, system, say=reporter.problem)
        if database
        else nullcontext() as dbs
    ):
        result = explore(opts, dbs, reporter)
        if args.export_spec and dbs is not None:
            from racesim.cli.export import export_found

            export_found(result, dbs, system, opts.store, reporter)
    if result.found:
        return EXIT_FOUND
    return EXIT_FLAKY if result.flaky else EXIT_OK


def cmd_replay(args: argparse.Namespace, reporter: Reporter) -> int:
    """``racesim replay FILE``: 1 when the saved violation happens again, 3 when not.

    With ``--store``, the schedule runs on that store instead: on a store the file
    does not expect the violation on (where a fix holds), a run without it is
    reported as such (exit 0), never as flaky."""
    from racesim.cli.export import export_spec, exportable
    from racesim.cli.options import split_agrees
    from racesim.formats.names import escaped
    from racesim.formats.writer import check_target
    from racesim.report import html
    from racesim.runner import databases, load_all, run_one

    page = html.check_target(args.html) if args.html is not None else None
    spec_out = check_target(args.export_spec, "--export-spec") if args.export_spec else None
    [scenario] = load_all([args.file], named_system(args))
    split_agrees([scenario], args.split_commits)
    system = scenario.system
    breaking = [s for s in scenario.stores if scenario.expect[s].breaks]
    if not breaking:
        raise InputError(
            f"{args.file}: expects no violation on any store; replay re-runs "
            "counterexamples (use racesim run for other scenarios)"
        )
    stores = breaking
    if args.store is not None:
        system.variant(args.store)  # an unknown store is refused first
        stores = [args.store]
    if spec_out is not None:
        exportable([(scenario, s) for s in stores])
    need_pg = any(system.variant(s).database for s in stores)
    flaky = found = False
    views = []
    with (
        databases(args.pg, args.dsn, system, say=reporter.problem)
        if need_pg
        else nullcontext() as dbs
    ):
        for store in stores:
            result = run_one(scenario, store, dbs, Options(stop_at_first=True))
            views.append(reporter.run(scenario.name, scenario.path, result.outcome, result.verdict))
            if spec_out is not None and dbs is not None:
                reporter.line(f"wrote {escaped(str(export_spec(result, dbs, spec_out)))}")
            if store not in breaking:
                found = _elsewhere(scenario, store, breaking, result, reporter) or found
                continue
            expected = scenario.expect[store]
            found = True
            if result.verdict.matches:
                reporter.line(f"reproduced: {expected.breaks} at {expected.at} on {store}")
            else:
                flaky = True
                reporter.line(
                    f"did not reproduce (flaky): expected {expected.describe()} on "
                    f"{store}, got {result.verdict.summary}"
                )
    if page is not None:
        html.write(views, page)
    return EXIT_FLAKY if flaky else EXIT_FOUND if found else EXIT_OK


def _elsewhere(
    scenario: Scenario, store: str, breaking: list[str], result: Result, reporter: Reporter
) -> bool:
    """Say what the counterexample did on a store it was not found on; True when it
    broke an invariant there."""
    where = "; ".join(f"{scenario.expect[s].describe()} on {s}" for s in breaking)
    outcome = result.outcome
    if outcome.history.stuck or outcome.checker.violations:
        reporter.line(f"on {store}: {result.verdict.summary} (the file expects {where})")
        return bool(outcome.checker.violations)
    reporter.line(f"does not occur on {store}: the schedule holds there (the file expects {where})")
    return False
