"""Options that would change nothing are refused with exit 2 and one line naming them."""

from __future__ import annotations

import pytest

from racesim.cli.main import main

DSN = "postgresql://racesim@127.0.0.1:1/none"


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["bench", "startup", "--dsn", DSN], "--dsn"),
        (["bench", "startup", "--pg", "dsn"], "--pg dsn"),
        (["bench", "parallel", "--dsn", DSN], "--dsn"),
        (["bench", "engine", "--seeds", "3"], "--seeds"),
        (["bench", "startup", "--seeds", "3"], "--seeds"),
        (["bench", "explore", "--repeat", "3"], "--repeat"),
        (["bench", "explore", "--seeds", "0"], "--seeds"),
        (["bench", "startup", "--repeat", "0"], "--repeat"),
        (["bench", "engine", "--repeat", "2"], "--repeat"),
        (["run", "scenarios", "--pg", "local", "--dsn", DSN], "--dsn"),
        (["replay", "x.toml", "--pg", "docker", "--dsn", DSN], "--dsn"),
        (["explore", "--store", "token", "--pg", "local", "--dsn", DSN], "--dsn"),
        (["soak", "--pg", "local", "--dsn", DSN], "--dsn"),
        (["explore", "--store", "token", "--strategy", "pct", "--profile", "ci"], "--profile"),
        (
            ["explore", "--store", "token", "--strategy", "exhaustive", "--profile", "dev"],
            "--profile",
        ),
        (["soak", "--minutes", "0"], "--minutes"),
        (["soak", "--minutes", "1.5"], "--minutes 1.5"),
        (["soak", "--minutes", "1", "--window", "0"], "--window"),
        (["soak", "--minutes", "0.5", "--window", "60"], "--window"),
    ],
)
def test_an_option_that_would_change_nothing_is_refused(
    argv: list[str], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and named in err, err


def test_options_that_take_effect_are_accepted(capsys: pytest.CaptureFixture[str]) -> None:
    # --pg auto with --dsn uses the DSN: not refused (this one only fails to connect)
    assert main(["explore", "--store", "token", "--pg", "auto", "--dsn", DSN]) == 2
    err = capsys.readouterr().err
    assert "would not use" not in err


@pytest.mark.parametrize("given", [["--dsn", DSN], ["--pg", "local"]])
def test_a_server_option_for_runs_in_memory_is_refused(
    given: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = "scenarios/t0-t4-cron-wipes-user.toml"
    assert main(["run", scenario, "--store", "model", *given]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert given[0] in line and "in memory (model)" in line
    assert "racesim@" not in line
