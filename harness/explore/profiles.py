"""Hypothesis settings profiles ``dev``, ``ci`` and ``nightly``, registered on import.

The example database lives under the project's cache folder
(``.cache/racesim/hypothesis``), one folder per system, store, configuration
and seed, so a failure found once is tried first when the same search runs
again, and what a seed finds never depends on what other seeds saved. Pick a profile with ``--profile`` / ``--racesim-profile`` or the
``HYPOTHESIS_PROFILE`` environment variable.

Example::

    from racesim.explore.profiles import settings_for
    s = settings_for("ci", store="legacy")
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from hypothesis import HealthCheck, Phase, settings
from hypothesis.database import DirectoryBasedExampleDatabase, ExampleDatabase

from racesim import config
from racesim.errors import InputError
from racesim.formats.writer import open_folder

__all__ = ["CACHE", "DEFAULT", "PROFILES", "database", "profile_name", "settings_for"]

CACHE = Path(config.value("cache") or ".cache/racesim")
"""The project's cache folder (relative to the working directory)."""

DEFAULT = "dev"
PROFILES = ("dev", "ci", "nightly")

_PHASES = (Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink)
_BASE = {
    "deadline": None,  # PostgreSQL round trips vary; a deadline would only add flakiness
    "suppress_health_check": list(HealthCheck),
    "phases": _PHASES,  # no "explain": it reruns every failure many times
    "print_blob": True,
}
settings.register_profile("dev", max_examples=200, **_BASE)  # type: ignore[arg-type]
settings.register_profile("ci", max_examples=500, derandomize=True, **_BASE)  # type: ignore[arg-type]
settings.register_profile("nightly", max_examples=10_000, **_BASE)  # type: ignore[arg-type]


def profile_name(choice: str | None = None) -> str:
    """``choice``, else ``$HYPOTHESIS_PROFILE``, else ``dev``; InputError if unknown."""
    name = config.value("profile", cli=choice or None) or DEFAULT
    if name not in PROFILES:
        raise InputError(f"unknown profile {name!r}; choose from {', '.join(PROFILES)}")
    return name


def database(store: str, key: str = "") -> ExampleDatabase:
    """The example database for explorations of ``store`` with this ``key`` (e.g. the
    system, configuration and seed): one folder each, named by a digest of both, so
    no name becomes a path."""
    digest = hashlib.sha256(f"{store}\0{key}".encode()).hexdigest()[:24]
    folder = CACHE / "hypothesis" / digest
    os.close(open_folder(folder, create=True)[0])  # made never through another's link
    return DirectoryBasedExampleDatabase(str(folder))


def settings_for(
    profile: str | None = None, *, store: str = "", key: str = "", **overrides: object
) -> settings:
    """The named profile's settings, with the cache database of ``store`` and ``key``
    (none without a store) and any overrides."""
    base = settings.get_profile(profile_name(profile))
    db = database(store, key) if store else None
    return settings(base, database=db, **overrides)  # type: ignore[arg-type]
