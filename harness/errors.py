"""racesim's exception hierarchy: one root, input errors apart from results.

An input error holds problems; each knows its file, line and hint as fields, so a
layer that learns the file later fills it in (``InputError.at``) instead of
rewriting text.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

__all__ = [
    "EXIT_FLAKY",
    "EXIT_FOUND",
    "EXIT_HARNESS",
    "EXIT_INPUT",
    "EXIT_OK",
    "HarnessError",
    "InputError",
    "Problem",
    "ProvisionError",
    "RacesimError",
]

EXIT_OK, EXIT_FOUND, EXIT_INPUT, EXIT_FLAKY, EXIT_HARNESS = 0, 1, 2, 3, 4
"""Exit statuses of the ``racesim`` command: matched / violation found or expectation
missed / bad input or no PostgreSQL / a replay that did not reproduce / the harness
could not finish checking (its monitor session was lost)."""


class RacesimError(Exception):
    """Root of every error racesim raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One problem with the input: what is wrong, where (file, line), and the fix."""

    message: str
    file: str | None = None
    line: int | None = None
    hint: str = ""

    def __str__(self) -> str:
        if self.file is not None:
            where = f"{self.file}:{self.line}: " if self.line is not None else f"{self.file}: "
        else:
            where = f"line {self.line}: " if self.line is not None else ""
        return where + self.message + (f"; {self.hint}" if self.hint else "")

    def at(self, file: str) -> Problem:
        """This problem in ``file`` (unless it already names one)."""
        return self if self.file is not None else replace(self, file=file)


class InputError(RacesimError, ValueError):
    """Bad input from the user: a scenario file, an option, an environment variable.

    ``items`` holds the problems; ``problems`` the same as one line each, naming
    where and how to fix it.
    """

    def __init__(self, problems: list[str | Problem] | list[str] | list[Problem] | str | Problem):
        given = [problems] if isinstance(problems, str | Problem) else list(problems)
        self.items = [Problem(p) if isinstance(p, str) else p for p in given]
        super().__init__("\n".join(self.problems))

    @property
    def problems(self) -> list[str]:
        return [str(p) for p in self.items]

    def at(self, file: str) -> InputError:
        """The same problems, placed in ``file`` where they name no file yet."""
        return InputError([p.at(file) for p in self.items])


class ProvisionError(RacesimError, RuntimeError):
    """No PostgreSQL could be had; the message lists what was tried and how to fix it."""


class HarnessError(RacesimError, RuntimeError):
    """The harness itself could not go on (its monitor session died, a bound was hit)."""
