"""A broken invariant, as the checks report it: plain data for verdicts and reports."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

MODEL_AGREEMENT = "model-agreement"
"""A call's result differs from the sequential model's."""


class _Declares(Protocol):
    @property
    def invariant_names(self) -> tuple[str, ...]: ...

    @property
    def model(self) -> object: ...


def invariant_names(system: _Declares) -> tuple[str, ...]:
    """Every invariant a run of ``system`` (a System) can break: its own, and model
    agreement when it has a model."""
    return system.invariant_names + ((MODEL_AGREEMENT,) if system.model else ())


@dataclass(frozen=True)
class Violation:
    """``invariant`` broke at event ``seq`` (label ``label``), by a step of ``actor``.

    ``runs`` are the runs involved; ``cause`` tells apart violations of the same
    invariant that come about differently (e.g. the call that did it), so an
    explorer keeps one counterexample per invariant and cause.
    """

    invariant: str
    seq: int
    label: str
    actor: str
    runs: tuple[str, ...]
    message: str
    cause: str = ""

    @property
    def key(self) -> str:
        """``invariant`` or ``invariant/cause``: what explorers keep apart."""
        return f"{self.invariant}/{self.cause}" if self.cause else self.invariant

    @property
    def slug(self) -> str:
        """The key as a file name part: ``invariant--cause``, any character other than
        a letter, digit, ``.``, ``_`` or ``-`` written as ``_``."""
        text = self.key.replace("/", "--")
        return "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "_" for c in text)
