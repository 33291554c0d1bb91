"""Choosing the system under test: ``--system``, a scenario's ``system =`` key, and the
plugin's ``race(..., system=)``. Every mistake is one line of input error, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from racesim.cli.main import main
from racesim.errors import InputError
from racesim.formats.scenario import parse
from racesim.model.plan import Actor, Plan, Step
from racesim.provision.provide import Server
from racesim.system import resolve
from racesim.systems.jobqueue.system import SYSTEM as JOBQUEUE

ROOT = Path(__file__).parent.parent
DOUBLE_CLAIM = ROOT / "scenarios" / "jobqueue" / "double-claim.toml"
T0 = ROOT / "scenarios" / "t0-t4-cron-wipes-user.toml"

QUEUE_BODY = """
stores = ["naive"]
schedule = ["T+0 producer: enqueue", "T+1 w1: find"]

[actors]
producer = { program = "producer" }
w1 = { program = "worker" }

[expect]
naive = "holds"
"""


def problems(text: str, given: str | None = None) -> list[str]:
    with pytest.raises(InputError) as caught:
        parse(text, "x.toml", given)
    return caught.value.problems


def test_the_key_chooses_the_system_and_its_programs() -> None:
    scenario = parse('system = "jobqueue"\n' + QUEUE_BODY, "x.toml")
    assert scenario.system is JOBQUEUE and scenario.stores == ("naive",)
    assert parse('system = "racesim.systems.jobqueue.system:SYSTEM"\n' + QUEUE_BODY).system is (
        JOBQUEUE
    )
    # Without the key, the programs are checked against the reference system's.
    assert any("unknown program 'producer'" in p for p in problems(QUEUE_BODY))


def test_a_given_system_applies_to_files_without_the_key() -> None:
    assert parse(QUEUE_BODY, "x.toml", "jobqueue").system is JOBQUEUE
    assert parse('system = "jobqueue"\n' + QUEUE_BODY, "x.toml", JOBQUEUE).system is JOBQUEUE


@pytest.mark.parametrize(
    ("key", "given", "message"),
    [
        (
            "system = 5",
            None,
            "x.toml:2: system must be a string: an installed system's name or"
            ' package.module:attribute, e.g. system = "jobqueue"',
        ),
        (
            'system = "nosuch"',
            None,
            "x.toml:2: system: no system named 'nosuch' is installed (installed: ",
        ),
        (
            'system = "nosuchmodule:SYSTEM"',
            None,
            "x.toml:2: system 'nosuchmodule:SYSTEM' is not an installed system, and a scenario"
            " file alone never has a module imported; fix: pass --system nosuchmodule:SYSTEM",
        ),
        (
            'system = "jobqueue"',
            "reference",
            "x.toml:2: the scenario is for system jobqueue, but --system names reference;"
            " drop --system or run another scenario",
        ),
    ],
)
def test_a_bad_key_is_one_line_naming_file_and_line(
    key: str, given: str | None, message: str
) -> None:
    (line,) = problems("# a comment first\n" + key + "\n" + QUEUE_BODY, given)
    assert line.startswith(message)


def test_run_with_system_and_store(pg_server: Server, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["run", str(DOUBLE_CLAIM), "--system", "jobqueue", "--store", "skiplocked"]
    assert main([*argv, "--dsn", pg_server.conninfo()]) == 0
    out = capsys.readouterr().out
    assert "[skiplocked]" in out and "[naive]" not in out and "1 matched, 0 did not" in out


def test_run_mixes_systems_by_their_keys(
    pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", str(T0), str(DOUBLE_CLAIM), "--dsn", pg_server.conninfo()]) == 0
    out = capsys.readouterr().out
    assert "[legacy]" in out and "[naive]" in out and "5 matched, 0 did not" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["run", str(DOUBLE_CLAIM), "--system", "nosuch"],
            "--system: no system named 'nosuch' is installed",
        ),
        (
            ["run", str(DOUBLE_CLAIM), "--store", "legacy"],
            "--store: unknown store 'legacy' for the scenarios' systems; choose from naive,"
            " skiplocked",
        ),
        (
            ["explore", "--system", "jobqueue", "--store", "legacy"],
            "unknown store 'legacy' for system jobqueue; choose from naive, skiplocked",
        ),
        (
            ["explore", "--system", "jobqueue", "--store", "naive", "--config", "cron+user"],
            "--config: expected one of 2workers, crash, 2jobs for system jobqueue",
        ),
        (["replay", str(DOUBLE_CLAIM), "--system", "reference"], "--system names reference"),
    ],
)
def test_bad_choices_exit_2_in_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*argv, "--pg", "dsn"]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_a_scenario_of_another_system_is_refused_line_by_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["run", str(T0), "--system", "jobqueue", "--pg", "dsn"]) == 2
    err = capsys.readouterr().err
    assert f"{T0}:9: unknown store 'legacy'; choose from naive, skiplocked" in err
    assert "actor cron: unknown program 'cron'; choose from producer, worker, auditor" in err


def test_race_takes_a_system(race: object) -> None:
    plan = Plan(
        (Actor("producer", "producer", {"jobs": 1}), Actor("w1", "worker"), Actor("w2", "worker")),
        tuple(
            Step(actor, call)
            for actor, call in [
                ("producer", "enqueue"),
                ("w1", "find"),
                ("w2", "find"),
                ("w1", "claim"),
                ("w2", "claim"),
            ]
        ),
    )
    naive = race(plan, store="naive", system="jobqueue")  # type: ignore[operator]
    assert [v.invariant for v in naive.verdict.violations] == ["one-holder"]
    assert not race(plan, store="skiplocked", system=JOBQUEUE).verdict.violations  # type: ignore[operator]
    # A scenario file brings its own system; the default store is the first it names.
    assert race(DOUBLE_CLAIM).store == "naive"  # type: ignore[operator]
    assert race(DOUBLE_CLAIM).verdict.matches  # type: ignore[operator]
    assert resolve("reference") is not JOBQUEUE
