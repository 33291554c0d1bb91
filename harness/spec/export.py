"""Write a racesim run as a ``.spec`` that PostgreSQL's isolationtester replays.

Each run (actor) becomes a session and each of its calls the statements it sent,
with their parameters written in: a statement sent outside a transaction block is
a step of its own, a ``BEGIN`` ... ``COMMIT`` block one step. The one permutation is
the schedule in the order it happened. A step that waited on a lock gets the marker
of the step whose completion released it (``cron_mark(user_commit)``), so
isolationtester reports the same waits in the same places.

Besides the runs, two sessions of racesim's own:

``racesim``          moves the virtual clock (an UPDATE of ``racesim_clock.frozen``)
                     before a step that happened later in virtual time, and ends a
                     run's backend where the run crashed or was terminated;
``racesim_watch``    reads the system's watched state (its monitor's query) at the
                     start and after every step that changed it, so isolationtester's
                     output shows the state change where racesim saw it.

The setup is what racesim sent to bring an empty database to the run's start: the
system's schema, the virtual clock, the store's own preparation and reset, then the
clock set to the run's first moment. The teardown drops every object the setup
created.

Example::

    text = export_spec(outcome, plan.actors, server, "legacy")
    Path("race.spec").write_text(text)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from racesim.engine.clock import SEARCH_PATH
from racesim.engine.sessions import DEADLOCK_TIMEOUT_MS
from racesim.errors import InputError
from racesim.formats.names import control_character, escaped
from racesim.model.history import Event, History
from racesim.model.outcome import Outcome
from racesim.model.plan import Actor
from racesim.provision.provide import Server
from racesim.spec.capture import Setup, capture, refuse_in_memory
from racesim.spec.parse import sql_block
from racesim.spec.written import Writer, ident
from racesim.system import DEFAULT_SYSTEM, System, resolve

__all__ = [
    "CLOCK_SESSION",
    "WATCH_SESSION",
    "Exported",
    "Setup",
    "capture",
    "export_spec",
    "refuse_in_memory",
    "write",
]

_NO_BRACE = "export a run whose SQL has no '}'"

CLOCK_SESSION = "racesim"
WATCH_SESSION = "racesim_watch"


def export_spec(
    outcome: Outcome,
    actors: Sequence[Actor],
    server: Server,
    store: str,
    system: System | str | None = None,
) -> str:
    """The ``.spec`` of a run (``outcome``) of ``actors`` on ``store`` of ``system``
    (the reference system by default); ``server`` prepares the scratch database whose
    statements become the setup."""
    found = resolve(DEFAULT_SYSTEM if system is None else system)
    return write(outcome.history, actors, capture(server, found, store)).text


@dataclass
class SpecStep:
    name: str
    session: str
    sql: str
    seq: int
    """The history event the step comes from (-1 for the start)."""
    marker: str = ""


@dataclass(frozen=True)
class Exported:
    text: str
    """The ``.spec``."""
    steps: tuple[SpecStep, ...]
    """The permutation's steps, in order."""

    def step_of(self, seq: int) -> tuple[SpecStep, ...]:
        """The steps of the run's actors made from history event ``seq``."""
        return tuple(
            s
            for s in self.steps
            if s.seq == seq and s.session not in (CLOCK_SESSION, WATCH_SESSION)
        )


@dataclass
class _Builder:
    watch_sql: str
    sessions: dict[str, list[SpecStep]] = field(default_factory=dict)
    permutation: list[SpecStep] = field(default_factory=list)
    names: set[str] = field(default_factory=set)
    now: datetime | None = None
    last_actor_step: SpecStep | None = None
    watches: int = 0
    clocks: int = 0

    def name(self, wanted: str) -> str:
        name, n = wanted, 1
        while name in self.names:
            n += 1
            name = f"{wanted}_{n}"
        self.names.add(name)
        return name

    def add(self, session: str, wanted: str, sql: str, seq: int) -> SpecStep:
        sql_block(sql, f"--export-spec: a statement of {session}", _NO_BRACE)
        step = SpecStep(self.name(wanted), session, sql, seq)
        self.sessions.setdefault(session, []).append(step)
        self.permutation.append(step)
        if session not in (CLOCK_SESSION, WATCH_SESSION):
            self.last_actor_step = step
        return step

    def at(self, when: datetime | None, seq: int, label: str = "") -> None:
        """Move the clock to ``when`` first, if it is not there: a step named after the
        schedule's label (``"T+3"``), else ``clockN``."""
        if when is None or self.now is None or when == self.now:
            self.now = self.now or when
            return
        self.now = when
        self.clocks += 1
        wanted = label if label and label not in self.names else f"clock{self.clocks}"
        self.add(CLOCK_SESSION, wanted, _set_clock(when), seq)

    def end(self, actor: str, when: datetime | None, seq: int, label: str = "") -> None:
        """End ``actor``'s backend (its run crashed or was terminated) at ``when``."""
        self.at(when, seq, label)
        self.add(CLOCK_SESSION, ident(f"end_{actor}"), _terminate(actor), seq)

    def watch(self, seq: int) -> None:
        if self.watch_sql:
            self.watches += 1
            self.add(WATCH_SESSION, f"watch{self.watches}", self.watch_sql, seq)


def write(history: History, actors: Sequence[Actor], setup: Setup) -> Exported:
    """The ``.spec`` of a run of ``actors`` on a database prepared as ``setup`` says."""
    if history.stuck:
        raise InputError(
            f"--export-spec: the run never finished ({history.stuck}); a .spec of it"
            " would never finish either; fix: export a run that ends"
        )
    for a in actors:
        if a.name in (CLOCK_SESSION, WATCH_SESSION):
            raise InputError(
                f"--export-spec: a run is named {a.name}, as one of racesim's own sessions in"
                " the .spec; fix: rename the actor"
            )
    events = history.events
    done_of = _completions(events)
    build = _Builder(_join(setup.watch))
    start = next((e.vtime for e in events if e.vtime is not None), None)
    build.now = start
    build.watch(-1)
    state: Any = setup.initial
    waiting: dict[str, tuple[list[str], SpecStep, SpecStep | None]] = {}
    for e in events:
        if e.kind == "outage":
            if e.call == "restart" or e.actor in ("monitor", "server"):
                raise InputError(
                    f"--export-spec: the run has '{e.call}' of {e.actor}, which a .spec cannot"
                    " do (isolationtester keeps its own connections and server); fix: export"
                    " a run without server restarts or monitor outages"
                )
            build.end(e.actor, e.vtime, e.seq, e.label)
        elif e.kind in ("step", "wait"):
            statements = done_of[e.seq].sent if e.kind == "wait" else e.sent
            groups = _groups(statements)
            base = ident(f"{e.actor}_{e.call}")
            names = [base] if len(groups) == 1 else [f"{base}_{i + 1}" for i in range(len(groups))]
            upto = len(groups)
            if e.kind == "wait":
                upto = _group_of(groups, len(e.sent) - 1) + 1
            if groups:
                build.at(e.vtime, e.seq, e.label)
            made = [build.add(e.actor, names[i], _join(groups[i]), e.seq) for i in range(upto)]
            if e.kind == "wait" and made:
                rest = [_join(g) for g in groups[upto:]]
                waiting[e.actor] = (rest, made[-1], build.last_actor_step)
            if e.session_ended:
                build.end(e.actor, e.vtime, e.seq)
        elif e.kind == "done" and e.actor in waiting:
            rest, waited, sent_after = waiting.pop(e.actor)
            releaser = build.last_actor_step
            if releaser is not None and releaser is not sent_after and releaser.session != e.actor:
                waited.marker = releaser.name
            base = waited.name
            for i, sql in enumerate(rest):
                build.add(e.actor, f"{base}_then{i + 1}", sql, e.seq)
        if e.state is not None:
            if e.state != state:
                build.watch(e.seq)
            state = e.state
    if waiting:
        actor = next(iter(waiting))
        raise InputError(
            f"--export-spec: the run stopped while {actor} still waited in"
            f" {waiting[actor][1].name}; isolationtester would wait for it for ever; fix:"
            " export a run that lets every step complete (without --stop-at-first)"
        )
    for session, steps in build.sessions.items():  # names are written quoted, on one line
        for name in (session, *(s.name for s in steps)):
            if control_character(name) is not None:
                raise InputError(
                    f"--export-spec: the name {escaped(name)[:60]!r} holds the control character"
                    f" {control_character(name)}, which no .spec name can hold; fix: rename it"
                )
    written = _text(history, actors, setup, build, start, _schedule(events, build))
    # read back, as isolationtester would read it (and what it would refuse)
    return Exported(written.text("--export-spec"), tuple(build.permutation))


def _order(actors: Sequence[Actor], build: _Builder) -> list[str]:
    """The sessions in the order the .spec lists them: the run's actors, then racesim's."""
    order = [a.name for a in actors if a.name in build.sessions]
    return order + [n for n in build.sessions if n not in order]


def _schedule(events: list[Event], build: _Builder) -> list[str]:
    """racesim's schedule as comment lines: each step and the .spec steps it became."""
    made: dict[int, list[str]] = {}
    for step in build.permutation:
        if step.session not in (CLOCK_SESSION, WATCH_SESSION):
            made.setdefault(step.seq, []).append(step.name)
    lines = []
    for e in events:
        if e.kind not in ("step", "wait", "outage"):
            continue
        label = f"{e.label} " if e.label else ""
        became = ", ".join(made.get(e.seq, [])) or "sent no SQL"
        wait = ", waited" if e.kind == "wait" else ""
        lines.append(f"  {label}{e.actor}: {e.call} ({became}{wait})")
    return lines


def _completions(events: list[Event]) -> dict[int, Event]:
    """For each ``wait`` event, the ``done`` event of the same call (or the wait itself)."""
    found: dict[int, Event] = {}
    open_waits: dict[str, Event] = {}
    for e in events:
        if e.kind == "wait":
            open_waits[e.actor] = e
            found[e.seq] = e
        elif e.kind == "done" and e.actor in open_waits:
            found[open_waits.pop(e.actor).seq] = e
    return found


def _groups(statements: Sequence[str]) -> list[list[str]]:
    """Statements as steps: a transaction block together, any other statement alone."""
    groups: list[list[str]] = []
    block: list[str] | None = None
    for text in statements:
        word = text.strip().split(None, 1)[0].upper() if text.strip() else ""
        if block is not None:
            block.append(text)
            if word in ("COMMIT", "ROLLBACK", "END", "ABORT") and not text.upper().startswith(
                "ROLLBACK TO"
            ):
                groups.append(block)
                block = None
        elif word in ("BEGIN", "START"):
            block = [text]
        else:
            groups.append([text])
    if block is not None:
        groups.append(block)
    return groups


def _group_of(groups: list[list[str]], index: int) -> int:
    seen = 0
    for i, g in enumerate(groups):
        seen += len(g)
        if index < seen:
            return i
    return len(groups) - 1


def _join(statements: Sequence[str], sep: str = " ") -> str:
    return sep.join(_ended(s) for s in statements if s.strip())


def _ended(statement: str) -> str:
    """``statement`` ended by ``;`` (on a line of its own after a ``--`` comment)."""
    text = statement.strip().rstrip(";").rstrip()
    return text + ("\n;" if "--" in text.rsplit("\n", 1)[-1] else ";")


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _set_clock(when: datetime) -> str:
    return (
        f"UPDATE racesim_clock.frozen SET at = {_literal(when.isoformat())}::timestamptz"
        " WHERE id = 1;"
    )


def _terminate(actor: str) -> str:
    """End the backend of ``actor``'s session (isolationtester names each session's
    connection ``.../<session>``) and wait until it is gone: only then are its locks free."""
    app = _literal("%/" + actor.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_"))
    return (
        "DO $$ BEGIN PERFORM pg_terminate_backend(pid) FROM pg_stat_activity"
        f" WHERE application_name LIKE {app}; LOOP PERFORM pg_stat_clear_snapshot();"
        f" EXIT WHEN NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE application_name LIKE"
        f" {app}); PERFORM pg_sleep(0.001); END LOOP; END $$;"
    )


def _session_setup(opened: tuple[str, ...]) -> str:
    """racesim's session settings, then what the run's session sent as it opened (the
    actor's options, the store's own setup)."""
    parts = [f"SET search_path TO {SEARCH_PATH};", f"SET deadlock_timeout = {DEADLOCK_TIMEOUT_MS};"]
    return " ".join(p for p in (*parts, _join(opened)) if p)


def _text(
    history: History,
    actors: Sequence[Actor],
    setup: Setup,
    build: _Builder,
    start: datetime | None,
    schedule: list[str],
) -> Writer:
    statements = [f"SET search_path TO {SEARCH_PATH}", *setup.statements]
    if start is not None:
        statements.append(_set_clock(start))
    scenario = history.scenario or "a racesim run"
    w = Writer()
    w.comment(f"{scenario}, store {history.store}, written by racesim (--export-spec).")
    w.comment("Each session is one run; each step the SQL it sent. The session racesim moves")
    w.comment("the virtual clock (NOW() reads racesim_clock.now()); racesim_watch reads the")
    w.comment("watched state where it changed. Run it with isolationtester.")
    w.comment()
    w.comment("racesim's schedule, and the steps below each of its steps became:")
    for line in schedule:
        w.comment(line)
    w.blank()
    w.setup(_join(statements, "\n"), "--export-spec: the setup", _NO_BRACE, lines=True)
    if setup.drops:
        w.blank()
        w.teardown(
            "\n".join(f"{d};" for d in setup.drops), "--export-spec: the teardown", lines=True
        )
    for session in _order(actors, build):
        w.session(session)
        if session != CLOCK_SESSION:
            opened = history.opened.get(session, ())
            what = f"--export-spec: the setup of {session}"
            w.setup(_session_setup(opened), what, _NO_BRACE)
        for s in build.sessions[session]:
            w.step(s.name, s.sql)
    w.permutation([(s.name, s.marker) for s in build.permutation])
    return w
