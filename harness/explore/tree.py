"""The exhaustive search's tree, as :mod:`racesim.explore.search` walks it: a frame
per choice (the choices enabled there, the sleep set, the choice taken and those
already done) and a subtree (the frames that lead to one node), which goes to
another process as plain values.

Example::

    sent = subtree.plain()
    again = Subtree.from_plain(sent)  # the same node, in another process
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from racesim.explore.steps import Access

__all__ = ["MOVE", "Frame", "Subtree"]

MOVE = "\0clock "
"""The prefix of a clock move's choice in the exhaustive tree (no actor's name)."""


@dataclass
class Frame:
    """One state of a schedule: what could be chosen there and what was."""

    enabled: list[str]
    sleep: dict[str, Access]
    choice: str
    done: dict[str, Access] = field(default_factory=dict)
    made: Access | None = None

    def copy(self) -> Frame:
        """The frame without what its step touched (the next run takes it again)."""
        return Frame(list(self.enabled), dict(self.sleep), self.choice, dict(self.done))


@dataclass(frozen=True)
class Subtree:
    """A node of the exhaustive tree: the variant (0: the actors as given, then one
    per added fault) and the frames that lead to it, with their sleep sets."""

    variant: int
    frames: tuple[Frame, ...]

    def plain(self) -> dict[str, Any]:
        """As plain values, to send to another process (:meth:`from_plain` reads it)."""
        return {
            "variant": self.variant,
            "frames": [
                {
                    "enabled": list(f.enabled),
                    "choice": f.choice,
                    "sleep": {a: x.plain() for a, x in f.sleep.items()},
                    "done": {a: x.plain() for a, x in f.done.items()},
                }
                for f in self.frames
            ],
        }

    @classmethod
    def from_plain(cls, value: Mapping[str, Any]) -> Subtree:
        frames = tuple(
            Frame(
                [str(a) for a in f["enabled"]],
                {str(a): Access.from_plain(x) for a, x in f["sleep"].items()},
                str(f["choice"]),
                {str(a): Access.from_plain(x) for a, x in f["done"].items()},
            )
            for f in value["frames"]
        )
        return cls(int(value["variant"]), frames)

    def label(self) -> str:
        """Its choices, for a line of output."""
        return " ".join(f.choice.replace(MOVE, "clock") for f in self.frames)
