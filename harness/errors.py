"""racesim's exception hierarchy: one root, input errors apart from results."""

from __future__ import annotations

EXIT_OK, EXIT_FOUND, EXIT_INPUT, EXIT_FLAKY, EXIT_HARNESS = 0, 1, 2, 3, 4
"""Exit statuses of the ``racesim`` command: matched / violation found or expectation
missed / bad input or no PostgreSQL / a replay that did not reproduce / the harness
could not finish checking (its monitor session was lost)."""


class RacesimError(Exception):
    """Root of every error racesim raises on purpose."""


class InputError(RacesimError, ValueError):
    """Bad input from the user: a scenario file, an option, an environment variable.

    ``problems`` holds one line per problem, each naming where and how to fix it.
    """

    def __init__(self, problems: list[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class ProvisionError(RacesimError, RuntimeError):
    """No PostgreSQL could be had; the message lists what was tried and how to fix it."""


class HarnessError(RacesimError, RuntimeError):
    """The harness itself could not go on (its monitor session died, a bound was hit)."""
