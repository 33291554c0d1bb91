"""Checking a scenario's TOML data against the system under test: every problem
found, each one line naming the file, the line and the fix."""

from __future__ import annotations

import re
from bisect import bisect_left
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

from racesim.errors import InputError, Problem
from racesim.formats import commits
from racesim.formats.bounds import Shape
from racesim.formats.commits import KEY
from racesim.model.plan import (
    LABEL,
    SESSION_SETTINGS,
    Actor,
    ClockMove,
    Entry,
    Outage,
    Plan,
    Step,
    label_offset,
)
from racesim.model.verdict import Expectation
from racesim.model.violation import invariant_names
from racesim.system import System

__all__ = ["Checked", "Lines", "Validator", "capped"]

MAX_ENTRIES = 10_000
MAX_ACTORS = 64
"""Each actor holds a PostgreSQL session of its own, and servers allow a few hundred."""
MAX_PROBLEMS = 20
MAX_CLOCK = timedelta(days=7)
NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,39}$")
STEP = re.compile(
    r"^(?:(?P<label>T[+-]\S*)\s+)?(?P<actor>[^\s:]+)\s*:\s*(?P<call>\S+)\s*(?:->.*)?$",
    re.ASCII | re.DOTALL,
)
CLOCK = re.compile(
    r"^(?:(?P<label>T[+-]\S*)\s+)?(?P<sign>[+-])(?P<amount>\d+(?:\.\d+)?)(?P<unit>us|ms|s|m|h|d)$",
    re.ASCII,
)
OUTAGE = re.compile(
    r"^(?:(?P<label>T[+-]\S*)\s+)?(?:(?P<kind>terminate)\s+(?P<target>[^\s:]+)|(?P<restart>restart)\s+server)$",
    re.ASCII,
)
_KEY_LINE = re.compile(r'^\s*(?:\[\s*(?:\w+\.)?)?(?:"([^"\n]*)"|([A-Za-z0-9_-]+))\s*[=\]]')
UNITS: dict[str, Decimal] = {
    "us": Decimal("0.000001"),
    "ms": Decimal("0.001"),
    "s": Decimal(1),
    "m": Decimal(60),
    "h": Decimal(3600),
    "d": Decimal(86400),
}
TOP_KEYS = {"system", "name", "description", "stores", "seed", "schedule", "actors", "expect", KEY}


class Checked(NamedTuple):
    """A checked scenario's parts (its path and system are the caller's)."""

    name: str
    description: str
    plan: Plan
    stores: tuple[str, ...]
    expect: dict[str, Expectation]


class Lines:
    """Finds the line a key or schedule entry sits on, for messages (one pass, then lookups)."""

    def __init__(self, text: str, shape: Shape) -> None:
        self.first: dict[str, tuple[int, int]] = {}  # key -> (line, offset of the line)
        offset = 0
        for n, line in enumerate(text.split("\n"), 1):
            m = _KEY_LINE.match(line)
            if m:
                self.first.setdefault(m[1] if m[1] is not None else m[2], (n, offset))
            offset += len(line) + 1
        self.strings = shape.strings

    def key(self, key: str, default: int = 1) -> int:
        return self.first.get(key, (default, 0))[0]

    def entries(self, values: list[str]) -> list[int]:
        """Lines of the schedule's strings: the strings that follow ``schedule =``, in order."""
        start, offset = self.first.get("schedule", (1, 0))
        i = bisect_left(self.strings, (offset, 0))
        lines = [line for _, line in self.strings[i : i + len(values)]]
        return lines + [start] * (len(values) - len(lines))


class Validator:
    def __init__(self, path: str, lines: Lines, system: System) -> None:
        self.path = path
        self.lines = lines
        self.system = system
        self.names = system.variant_names
        self.example = next(iter(system.programs), "PROGRAM")
        """A program of the system, for the examples in messages."""
        self.problems: list[Problem] = []

    def bad(self, line: int, message: str) -> None:
        self.problems.append(Problem(message, self.path, line))

    def scenario(self, data: dict[str, Any]) -> Checked:
        """The scenario's parts, once every problem of ``data`` is found (InputError
        listing them otherwise)."""
        for key in sorted(set(data) - TOP_KEYS):
            self.bad(
                self.lines.key(key),
                f"unknown key {key!r}; known keys: {', '.join(sorted(TOP_KEYS))}",
            )
        name = data.get("name", Path(self.path).stem)
        if not isinstance(name, str) or not name.strip():
            self.bad(self.lines.key("name"), "name must be a non-empty string")
            name = Path(self.path).stem
        description = data.get("description", "")
        if not isinstance(description, str):
            self.bad(self.lines.key("description"), "description must be a string")
            description = ""
        seed = data.get("seed", 0)
        if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**63:
            self.bad(self.lines.key("seed"), "seed must be a whole number from 0 to 2**63-1")
            seed = 0
        stores = self.stores(data.get("stores", list(self.names)))
        actors = self.actors(data.get("actors"))
        entries = self.schedule(data.get("schedule"), {a.name: a for a in actors})
        calls = {a.name: self.system.programs[a.program].calls for a in actors}
        split, wrong = commits.checked(data.get(KEY), self.lines.key(KEY), calls, entries)
        self.problems += [Problem(message, self.path, line) for line, message in wrong]
        expect = self.expect(data.get("expect"), stores, entries)
        if self.problems:
            raise InputError(capped(self.problems))
        plan = Plan(tuple(actors), tuple(entries), seed, split)
        return Checked(name.strip(), description, plan, stores, expect)

    def stores(self, value: Any) -> tuple[str, ...]:
        line = self.lines.key("stores")
        names = ", ".join(self.names)
        if not isinstance(value, list) or not value or not all(isinstance(s, str) for s in value):
            self.bad(line, f"stores must be a non-empty list of store names ({names})")
            return ()
        for s in value:
            if s not in self.names:
                self.bad(line, f"unknown store {s[:40]!r}; choose from {names}")
        if len(set(value)) != len(value):
            self.bad(line, "a store is listed twice in stores; list each once")
        return tuple(s for s in dict.fromkeys(value) if s in self.names)

    def actors(self, value: Any) -> list[Actor]:
        if value is None:
            example = f'[actors] a = {{ program = "{self.example}" }}'
            self.bad(1, f"no [actors] table; add one, e.g. {example}")
            return []
        if not isinstance(value, dict) or not value:
            self.bad(self.lines.key("actors"), "actors must be a table of name = { program = ... }")
            return []
        if len(value) > MAX_ACTORS:  # alone: every step would name an unknown actor
            raise InputError(
                f"{self.path}:{self.lines.key('actors')}: {len(value)} actors, more than"
                f" {MAX_ACTORS} (each holds a PostgreSQL session of its own); split the scenario"
            )
        out = []
        for name, spec in value.items():
            line = self.lines.key(name, self.lines.key("actors"))
            if not NAME.match(name):
                self.bad(
                    line,
                    f"actor name {name[:40]!r} must be a letter then letters, digits, - or _ (at most 40)",
                )
                continue
            if not isinstance(spec, dict):
                example = f'{name} = {{ program = "{self.example}" }}'
                self.bad(line, f"actor {name} must be a table: {example}")
                continue
            actor = self.actor(name, spec, line)
            if actor:
                out.append(actor)
        for a, problem in self.system.check_actors(tuple(out)):
            self.bad(a.line or 1, f"actor {a.name}: {problem}")
        return out

    def actor(self, name: str, spec: dict[str, Any], line: int) -> Actor | None:
        program = spec.get("program")
        programs = self.system.programs
        if not isinstance(program, str) or program not in programs:
            self.bad(
                line,
                f"actor {name}: unknown program {str(program)[:40]!r}; choose from {', '.join(programs)}",
            )
            return None
        known = programs[program]
        faults = spec.get("faults", [])
        if not isinstance(faults, list) or not all(isinstance(f, str) for f in faults):
            self.bad(line, f"actor {name}: faults must be a list of names")
            faults = []
        for f in faults:
            if f not in known.faults:
                allowed = ", ".join(sorted(known.faults)) or "none"
                met = f in self.system.faults
                why = f"fault not met by a {program} run" if met else "unknown fault"
                self.bad(line, f"actor {name}: {why} {f[:40]!r}; allowed: {allowed}")
        options = {k: v for k, v in spec.items() if k not in ("program", "faults")}
        for key, value in options.items():
            if key not in set(known.options) | set(SESSION_SETTINGS):
                allowed = ", ".join(sorted(set(known.options) | set(SESSION_SETTINGS)))
                self.bad(
                    line,
                    f"actor {name}: unknown option {key[:40]!r} for {program}; allowed: {allowed}",
                )
            else:
                option = known.options.get(key)
                ok = option.check(value) if option is not None else _setting_ok(value)
                if not ok:
                    fix = option.help if option is not None else SETTING_HELP
                    self.bad(line, f"actor {name}: bad value for {key}: {str(value)[:40]!r}; {fix}")
        return Actor(name, program, options, frozenset(faults), line)

    def schedule(self, value: Any, actors: dict[str, Actor]) -> list[Entry]:
        if value is None:
            self.bad(
                1, 'no schedule; add schedule = ["T+0 actor: call", ...] before the first table'
            )
            return []
        line0 = self.lines.key("schedule")
        if not isinstance(value, list) or not value or not all(isinstance(s, str) for s in value):
            self.bad(line0, 'schedule must be a non-empty list of strings like "T+1 user: read"')
            return []
        if len(value) > MAX_ENTRIES:
            self.bad(
                line0, f"schedule has {len(value)} entries, more than {MAX_ENTRIES}; shorten it"
            )
            return []
        out: list[Entry] = []
        labels: dict[str, int] = {}
        last: timedelta | None = None
        for text, line in zip(value, self.lines.entries(value), strict=True):
            entry = self.entry(text.strip(), line, actors)
            if entry is None:
                continue
            if entry.label:
                if entry.label in labels:
                    self.bad(
                        line,
                        f"label {entry.label} is used twice (first on line {labels[entry.label]}); give each step its own label",
                    )
                labels.setdefault(entry.label, line)
                at = label_offset(entry.label)
                if last is not None and at <= last:
                    self.bad(
                        line,
                        f"label {entry.label} is not after the label before it; labels are time points and must increase",
                    )
                last = at
            out.append(entry)
        return out

    def entry(self, text: str, line: int, actors: dict[str, Actor]) -> Entry | None:
        clock = CLOCK.match(text)
        if clock:
            if clock["sign"] == "-":
                self.bad(
                    line,
                    f"clock move {text[:40]!r} goes backwards; the clock only moves forward (write +{clock['amount']}{clock['unit']})",
                )
                return None
            exact = Decimal(clock["amount"]) * UNITS[clock["unit"]]
            delta = timedelta(microseconds=int(min(exact, Decimal(10**7)) * 1_000_000))
            if delta <= timedelta(0) or delta > MAX_CLOCK:
                self.bad(line, f"clock move {text[:40]!r} must be more than 0 and at most 7d")
                return None
            if clock["label"] and not self.label_ok(clock["label"], line):
                return None
            return ClockMove(delta, clock["label"] or "", line)
        outage = OUTAGE.match(text)
        if outage:
            label = outage["label"] or ""
            if label and not self.label_ok(label, line):
                return None
            if outage["restart"]:
                return Outage("restart", "server", label, line)
            target = outage["target"]
            if target != "monitor" and target not in actors:
                self.bad(
                    line,
                    f"terminate names unknown actor {target[:40]!r}; name an actor or 'monitor'",
                )
                return None
            return Outage("terminate", target, label, line)
        m = STEP.match(text)
        if not m:
            self.bad(
                line,
                f'cannot read schedule entry {text[:60]!r}; write "T+1 actor: call", "+6m",'
                ' "terminate actor" or "restart server"',
            )
            return None
        label, actor, call = m["label"] or "", m["actor"], m["call"]
        if label and not self.label_ok(label, line):
            return None
        if actor not in actors:
            known = ", ".join(actors) or "none declared"
            self.bad(
                line, f"unknown actor {actor[:40]!r}; declare it under [actors] (known: {known})"
            )
            return None
        calls = self.system.programs[actors[actor].program].calls
        if call not in calls and commits.base(call, calls) is None:
            self.bad(
                line,
                f"{actor} ({actors[actor].program}) never calls {call[:40]!r}; its calls: {', '.join(sorted(calls))}",
            )
            return None
        return Step(actor, call, label, line)

    def label_ok(self, label: str, line: int) -> bool:
        if label.isascii() and LABEL.match(label):
            return True
        self.bad(line, f"bad time label {label[:40]!r}; write T+3, T-1 or T+1.5 (at most 6 digits)")
        return False

    def expect(
        self, value: Any, stores: tuple[str, ...], entries: list[Entry]
    ) -> dict[str, Expectation]:
        line = self.lines.key("expect")
        if not isinstance(value, dict):
            self.bad(
                line if value is not None else 1,
                f'no [expect] table; add one with an outcome per store, e.g. {self.names[0]} = "holds"',
            )
            return {}
        labels = {e.label for e in entries if e.label}
        out: dict[str, Expectation] = {}
        for store in stores:
            if store not in value:
                self.bad(
                    line,
                    f'no expected outcome for store {store}; add {store} = "holds" or {{ breaks = "...", at = "T+n" }}',
                )
        for store, spec in value.items():
            sline = self.lines.key(store, line)
            if store not in self.names:
                self.bad(
                    sline,
                    f"[expect] names unknown store {store[:40]!r}; choose from {', '.join(self.names)}",
                )
                continue
            if spec == "holds":
                out[store] = Expectation()
                continue
            if not isinstance(spec, dict) or set(spec) != {"breaks", "at"}:
                self.bad(
                    sline,
                    f'expectation for {store} must be "holds" or {{ breaks = "<invariant>", at = "T+n" }}',
                )
                continue
            known = invariant_names(self.system)
            if not isinstance(spec["breaks"], str) or spec["breaks"] not in known:
                self.bad(
                    sline,
                    f"unknown invariant {str(spec['breaks'])[:40]!r}; choose from {', '.join(known)}",
                )
                continue
            if not isinstance(spec["at"], str) or spec["at"] not in labels:
                self.bad(
                    sline,
                    f"expected break at {str(spec['at'])[:40]!r}, which labels no step; use a label from the schedule",
                )
                continue
            out[store] = Expectation(spec["breaks"], spec["at"])
        return out


SETTING_HELP = "use milliseconds, 1 to 600000"
"""The fix for a bad session setting (``lock_timeout``, ``statement_timeout``)."""


def _setting_ok(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 600_000


def capped(problems: list[Problem]) -> list[Problem]:
    """The first MAX_PROBLEMS problems, and a last line saying how many more there are."""
    if len(problems) <= MAX_PROBLEMS:
        return problems
    last = problems[MAX_PROBLEMS - 1]
    more = len(problems) - MAX_PROBLEMS + 1
    summary = Problem(f"and {more} more problems", last.file, last.line, "fix those first")
    return [*problems[: MAX_PROBLEMS - 1], summary]
