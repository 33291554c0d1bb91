"""A ``.spec`` racesim writes, read back before it is saved: it must hold exactly the
setup blocks, sessions, steps and permutation racesim meant to write, and nothing
that a name or comment turned into grammar.

Example::

    meant = Meant(setups=1, sessions=(("s1", ("a",)),), permutation=("a",))
    check(text, meant, "--export-spec")
"""

from __future__ import annotations

from dataclasses import dataclass

from racesim.errors import InputError
from racesim.spec.parse import parse_text

__all__ = ["Meant", "check"]


@dataclass(frozen=True)
class Meant:
    setups: int
    sessions: tuple[tuple[str, tuple[str, ...]], ...]
    """Each session's name and its steps' names, in order."""
    permutation: tuple[str, ...]


def check(text: str, meant: Meant, what: str) -> None:
    """InputError unless ``text`` parses to what ``meant`` describes."""
    spec = parse_text(text, "written.spec")
    got = Meant(
        len(spec.setups),
        tuple((s.name, tuple(st.name for st in s.steps)) for s in spec.sessions),
        tuple(p.name for p in spec.permutations[0].steps) if len(spec.permutations) == 1 else (),
    )
    if got != meant:
        raise InputError(
            f"{what}: the .spec racesim wrote would not hold exactly the run it records (a"
            " name in it reads as other grammar); fix: rename the sessions or steps"
        )
