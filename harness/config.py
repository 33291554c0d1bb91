"""One resolution for every setting: command line, then ini, then environment, then default.

Every option that can also come from an ini key (the pytest plugin's) or a
``RACESIM_*`` variable is listed in ``SETTINGS`` and looked up with
``resolve``, which also says where the value came from, for messages.

>>> resolve("dsn", cli=None, ini="", env={"RACESIM_DSN": "postgresql://x"}).origin
'RACESIM_DSN'
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["SETTINGS", "Resolved", "Setting", "resolve", "value"]


@dataclass(frozen=True)
class Setting:
    """A setting: its command-line option, ini key, environment variable and default."""

    name: str
    option: str = ""
    ini: str = ""
    env: str = ""
    default: str | None = None


SETTINGS: dict[str, Setting] = {
    s.name: s
    for s in (
        Setting("dsn", "--dsn", "racesim_dsn", "RACESIM_DSN"),
        Setting("seed", "--seed", "racesim_seed", "RACESIM_SEED", "0"),
        Setting("profile", "--profile", "racesim_profile", "HYPOTHESIS_PROFILE", "dev"),
        Setting("pg_version", "--pg-version", "racesim_pg_version", "RACESIM_PG_VERSION"),
        Setting("cache", "", "", "RACESIM_CACHE", ".cache/racesim"),
        Setting("cache_dir", "", "", "RACESIM_CACHE_DIR"),
        Setting("run_dir", "", "", "RACESIM_RUN_DIR"),
        Setting("docker_image", "", "", "RACESIM_DOCKER_IMAGE"),
    )
}
"""Every setting racesim reads from more than one place, or from the environment."""


@dataclass(frozen=True)
class Resolved:
    value: str | None
    origin: str
    """``--dsn``, ``racesim_dsn (ini)``, ``RACESIM_DSN`` or ``default``."""


def resolve(
    name: str,
    cli: str | None = None,
    ini: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Resolved:
    """The setting's value: ``cli`` if given, else ``ini`` if non-empty, else the
    environment variable if non-empty, else the default."""
    s = SETTINGS[name]
    if cli is not None:
        return Resolved(cli, s.option or name)
    if ini:
        return Resolved(ini, f"{s.ini} (ini)")
    found = (os.environ if env is None else env).get(s.env, "") if s.env else ""
    if found:
        return Resolved(found, s.env)
    return Resolved(s.default, "default")


def value(
    name: str,
    cli: str | None = None,
    ini: str | None = None,
    env: Mapping[str, str] | None = None,
) -> str | None:
    """Just the value of ``resolve``."""
    return resolve(name, cli, ini, env).value
