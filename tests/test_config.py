"""One resolution for every setting: command line > ini > environment > default."""

from __future__ import annotations

from racesim import config


def test_the_command_line_wins_then_ini_then_environment_then_default() -> None:
    env = {"RACESIM_DSN": "postgresql://env"}
    got = config.resolve("dsn", cli="postgresql://cli", ini="postgresql://ini", env=env)
    assert (got.value, got.origin) == ("postgresql://cli", "--dsn")
    got = config.resolve("dsn", ini="postgresql://ini", env=env)
    assert (got.value, got.origin) == ("postgresql://ini", "racesim_dsn (ini)")
    got = config.resolve("dsn", ini="", env=env)
    assert (got.value, got.origin) == ("postgresql://env", "RACESIM_DSN")
    assert config.resolve("dsn", env={}) == config.Resolved(None, "default")


def test_an_empty_variable_is_unset() -> None:
    assert config.value("profile", env={"HYPOTHESIS_PROFILE": ""}) == "dev"
    assert config.value("profile", env={"HYPOTHESIS_PROFILE": "ci"}) == "ci"


def test_every_environment_variable_racesim_reads_is_listed() -> None:
    names = {s.env for s in config.SETTINGS.values()}
    assert {"RACESIM_DSN", "RACESIM_CACHE", "RACESIM_CACHE_DIR", "RACESIM_RUN_DIR"} <= names
