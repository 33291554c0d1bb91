"""Random small specs print the same under racesim and under the real isolationtester.

Hypothesis builds specs of 2-3 sessions, each one transaction of row locks
(``FOR SHARE``, ``FOR UPDATE``, ``NOWAIT``, ``SKIP LOCKED``, ``UPDATE``), advisory
locks (waiting and ``try``), savepoints, errors and deadlocks, and one permutation.
A small model of PostgreSQL's locking picks each next step so that the spec is
deterministic, as PostgreSQL's own specs are:

- a session waiting on a lock gets no further step until it is granted;
- no request joins a lock that already has a waiter (no queue-order effects);
- the step that closes a wait cycle sets a 10 ms ``deadlock_timeout`` (every
  session's default is 100 s) so it is the one PostgreSQL cancels, is marked
  ``(*)`` (isolationtester may or may not see it wait before the detector ends
  it), and its session's next step comes right after it; the steps waiting on its
  session carry its name as a marker, so they are not reported complete before it
  (PostgreSQL's deadlock-hard.spec does the same).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from spec_support import Target, target15, write_spec

__all__ = ["target15"]

ROWS = (1, 2)
ADVISORY = (7, 8)


@dataclass
class Op:
    sql: str
    resource: tuple[str, int] | None = None
    mode: str = ""  # "S" shared, "X" exclusive
    how: str = "wait"  # wait, nowait, skip, try, error, savepoint, rollback_to, release, end


@dataclass
class Session:
    index: int
    locks: dict[tuple[str, int], tuple[str, int]] = field(default_factory=dict)
    """resource -> (mode, savepoint level it was taken at)"""
    depth: int = 0
    aborted: bool = False
    waiting: tuple[Op, str] | None = None  # the op and its step name
    ended: bool = False


class Model:
    def __init__(self, n: int) -> None:
        self.sessions = [Session(i) for i in range(n)]

    def holders(self, resource: tuple[str, int], other_than: int) -> list[tuple[int, str]]:
        return [
            (s.index, s.locks[resource][0])
            for s in self.sessions
            if s.index != other_than and resource in s.locks
        ]

    def has_waiter(self, resource: tuple[str, int]) -> bool:
        return any(s.waiting and s.waiting[0].resource == resource for s in self.sessions)

    def conflicts(self, session: int, resource: tuple[str, int], mode: str) -> list[int]:
        return [i for i, m in self.holders(resource, session) if mode == "X" or m == "X"]

    def waits_for(self, session: int) -> list[int]:
        s = self.sessions[session]
        if s.waiting is None:
            return []
        op = s.waiting[0]
        assert op.resource is not None
        return self.conflicts(session, op.resource, op.mode)

    def closes_cycle(self, session: int) -> bool:
        seen, todo = set(), list(self.waits_for(session))
        while todo:
            i = todo.pop()
            if i == session:
                return True
            if i not in seen:
                seen.add(i)
                todo.extend(self.waits_for(i))
        return False

    def release(self, s: Session, from_level: int) -> None:
        for resource in [r for r, (_, lvl) in s.locks.items() if lvl >= from_level]:
            del s.locks[resource]

    def error(self, s: Session) -> None:
        self.release(s, s.depth if s.depth > 0 else 0)
        s.aborted = True

    def grant_waiters(self) -> None:
        changed = True
        while changed:
            changed = False
            for s in self.sessions:
                if s.waiting is not None and not self.waits_for(s.index):
                    op = s.waiting[0]
                    assert op.resource is not None
                    s.locks[op.resource] = (op.mode, s.depth)
                    s.waiting = None
                    changed = True


def _options(model: Model, s: Session) -> list[Op]:
    if s.aborted:
        ops = [Op("SELECT 1 AS ignored;", how="error")]
        if s.depth > 0:
            ops.append(Op("ROLLBACK TO SAVEPOINT sp;", how="rollback_to"))
        return ops
    ops = [Op("SELECT 1/0;", how="error"), Op("SAVEPOINT sp;", how="savepoint")]
    if s.depth > 0:
        ops += [
            Op("ROLLBACK TO SAVEPOINT sp;", how="rollback_to"),
            Op("RELEASE SAVEPOINT sp;", how="release"),
        ]
    else:
        ops.append(Op("ROLLBACK TO SAVEPOINT sp;", how="error"))
    for k in ROWS:
        r = ("row", k)
        base = f"SELECT id FROM t WHERE id = {k}"
        for sql, mode, how in (
            (f"{base} FOR SHARE;", "S", "wait"),
            (f"{base} FOR UPDATE;", "X", "wait"),
            (f"UPDATE t SET v = v + 1 WHERE id = {k};", "X", "wait"),
            (f"{base} FOR UPDATE NOWAIT;", "X", "nowait"),
            (f"{base} FOR UPDATE SKIP LOCKED;", "X", "skip"),
        ):
            ops.append(Op(sql, r, mode, how))
    for k in ADVISORY:
        r = ("adv", k)
        ops += [
            Op(f"SELECT pg_advisory_xact_lock({k});", r, "X", "wait"),
            Op(f"SELECT pg_advisory_xact_lock_shared({k});", r, "S", "wait"),
            Op(f"SELECT pg_try_advisory_xact_lock({k});", r, "X", "try"),
        ]

    def allowed(op: Op) -> bool:
        if op.resource is None:
            return True
        if model.has_waiter(op.resource):
            return False
        held = s.locks.get(op.resource)
        if held is None:
            return True
        # Upgrades of a row lock only outside savepoints; nothing else twice.
        return op.resource[0] == "row" and held[0] == "S" and op.mode == "X" and s.depth == 0

    # Waiting locks three times as likely as the rest: waits and deadlocks are the point.
    weighted = [op for op in ops for _ in range(3 if op.how == "wait" and op.mode == "X" else 1)]
    return [op for op in weighted if allowed(op)]


@st.composite
def specs(draw: st.DrawFn) -> str:
    n = draw(st.integers(2, 3))
    budgets = [draw(st.integers(1, 4)) for _ in range(n)]
    model = Model(n)
    steps: list[list[tuple[str, str]]] = [[] for _ in range(n)]
    perm: list[list[str]] = []  # step name and its markers
    forced: int | None = None
    while True:
        ready = [s.index for s in model.sessions if not s.ended and s.waiting is None]
        if not ready:
            break
        i = forced if forced is not None else draw(st.sampled_from(ready))
        forced = None
        s = model.sessions[i]
        name = f"s{i + 1}_{len(steps[i]) + 1}"
        markers: list[str] = []
        if len(steps[i]) == budgets[i]:
            op = Op(draw(st.sampled_from(["COMMIT;", "ROLLBACK;"])), how="end")
        else:
            op = draw(st.sampled_from(_options(model, s)))
        if op.how == "end":
            model.release(s, 0)
            s.ended = True
        elif op.how == "error":
            model.error(s)
        elif op.how == "savepoint":
            s.depth += 1
        elif op.how == "release":
            for r, (m, lvl) in list(s.locks.items()):
                if lvl == s.depth:
                    s.locks[r] = (m, lvl - 1)
            s.depth -= 1
        elif op.how == "rollback_to":
            model.release(s, s.depth)
            s.aborted = False
        else:
            assert op.resource is not None
            blocked = bool(model.conflicts(i, op.resource, op.mode))
            if not blocked:
                s.locks[op.resource] = (op.mode, s.depth)
            elif op.how == "nowait":
                model.error(s)
            elif op.how == "wait":
                s.waiting = (op, name)
                if model.closes_cycle(i):
                    op = Op("SET LOCAL deadlock_timeout = '10ms'; " + op.sql)
                    # Who waits on this session must not be reported before it.
                    for other in model.sessions:
                        if other.waiting is not None and i in model.waits_for(other.index):
                            entry = next(e for e in perm if e[0] == other.waiting[1])
                            entry.append(name)
                    s.waiting = None
                    model.error(s)
                    markers = ["*"]
                    forced = i
        steps[i].append((name, op.sql))
        perm.append([name, *markers])
        model.grant_waiters()

    lines = [
        "setup { CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t VALUES (1, 0), (2, 0); }",
        "teardown { DROP TABLE t; }",
    ]
    for i, session in enumerate(steps):
        lines.append(f"session s{i + 1}")
        lines.append("setup { SET deadlock_timeout = '100s'; BEGIN; }")
        lines += [f"step {name} {{ {sql} }}" for name, sql in session]
    lines.append(
        "permutation "
        + " ".join(e[0] + (f"({', '.join(e[1:])})" if len(e) > 1 else "") for e in perm)
    )
    return "\n".join(lines) + "\n"


DEADLOCK = """\
setup { CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t VALUES (1, 0), (2, 0); }
teardown { DROP TABLE t; }
session s1
setup { SET deadlock_timeout = '100s'; BEGIN; }
step s1_1 { SELECT id FROM t WHERE id = 1 FOR SHARE; }
step s1_2 { SELECT pg_advisory_xact_lock(7); }
step s1_3 { COMMIT; }
session s2
setup { SET deadlock_timeout = '100s'; BEGIN; }
step s2_1 { SAVEPOINT sp; }
step s2_2 { SELECT pg_advisory_xact_lock(7); }
step s2_3 { SET LOCAL deadlock_timeout = '10ms'; UPDATE t SET v = v + 1 WHERE id = 1; }
step s2_4 { ROLLBACK TO SAVEPOINT sp; }
step s2_5 { ROLLBACK; }
permutation s1_1 s2_1 s2_2 s1_2(s2_3) s2_3(*) s2_4 s1_3 s2_5
"""
"""s2 holds the advisory lock s1 waits for, then waits for s1's row: s2 is canceled
(inside its savepoint, which is rolled back, letting s1 go)."""


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@example(text=DEADLOCK)
@given(text=specs())
def test_random_specs_print_the_same(target15: Target, tmp_path: Path, text: str) -> None:
    path, spec = write_spec(tmp_path, text)
    status, reference = target15.reference(path)
    completed, ours = target15.racesim(spec)
    assert status == 0, reference.decode()
    assert completed
    assert ours.decode() == reference.decode(), text
