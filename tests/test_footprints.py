"""Footprints read by PostgreSQL's own parser: what a statement reads and writes,
what a transaction's end and a REPEATABLE READ snapshot touch, which setups turn
the reduction off, and that the exhaustive .spec search still finds the
interleavings that break an invariant."""

from __future__ import annotations

from pathlib import Path

import pytest
from spec_support import Target, target15, write_spec

from racesim.footprints import ANY_ADVISORY, Schema, Session, conflicts, of_sql, schema_of
from racesim.spec.explore import Invariant, Search
from racesim.system import Footprint

__all__ = ["target15"]


def fp(reads: set[str] | None = None, writes: set[str] | None = None) -> Footprint:
    return Footprint(reads=frozenset(reads or ()), writes=frozenset(writes or ()))


@pytest.mark.fast
@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT n FROM accounts WHERE id = 1", fp({"accounts"})),
        ('SELECT * FROM public."Accounts" a JOIN Other.B b ON true', fp({"Accounts", "b"})),
        ("UPDATE t SET n = (SELECT max(n) FROM u)", fp({"u"}, {"t"})),
        ("INSERT INTO t SELECT * FROM u ON CONFLICT DO NOTHING", fp({"u"}, {"t"})),
        ("DELETE FROM t USING u WHERE t.id = u.id", fp({"u"}, {"t"})),
        ("SELECT * FROM t FOR UPDATE", fp(writes={"t"})),
        ("SELECT * FROM t, u FOR SHARE OF t", fp({"u"}, {"t"})),
        ("SELECT * FROM t AS a, u FOR UPDATE OF a", fp({"u"}, {"t"})),
        ("SELECT * FROM t AS a, (SELECT * FROM u AS a) s FOR UPDATE OF a", fp(writes={"t", "u"})),
        ("SELECT * FROM t, (SELECT 1) AS s FOR UPDATE OF s", fp(writes={"t"})),
        ("SELECT * FROM t WHERE id IN (SELECT id FROM u FOR KEY SHARE)", fp({"t"}, {"u"})),
        ("LOCK TABLE t IN SHARE MODE", fp(writes={"t"})),
        (
            "WITH gone AS (DELETE FROM q RETURNING id) INSERT INTO done SELECT id FROM gone",
            fp({"gone"}, {"q", "done"}),
        ),
        ("SELECT pg_advisory_lock(7)", fp({ANY_ADVISORY}, {"advisory:7"})),
        ("SELECT pg_try_advisory_xact_lock(1, 2)", fp({ANY_ADVISORY}, {"advisory:1,2"})),
        ("SELECT pg_advisory_lock_shared(7::bigint)", fp({ANY_ADVISORY, "advisory:7"})),
        ("SELECT pg_advisory_lock(id) FROM t", fp({"t"}, {ANY_ADVISORY})),
        ("SELECT pg_advisory_unlock_all()", fp(writes={ANY_ADVISORY})),
        ("SELECT nextval('Public.Seq')", fp(writes={"seq"})),
        ("""SELECT setval('"Seq"'::regclass, 5)""", fp(writes={"Seq"})),
        ("SELECT count(*), now(), lower('A'), pg_sleep(0) FROM t", fp({"t"})),
        ("CREATE TABLE z (n int)", fp(writes={"z"})),
        ("ALTER TABLE z ADD COLUMN m int", fp(writes={"z"})),
        ("DROP TABLE z", fp(writes={"z"})),
        ("TRUNCATE z", fp(writes={"z"})),
        ("VACUUM (FULL) z, public.y", fp(writes={"z", "y"})),
        ("ANALYZE z", fp(writes={"z"})),
        ("SET lock_timeout = '1s'; SHOW lock_timeout", fp()),
        ("BEGIN", fp()),
        ("SAVEPOINT a", fp()),
        ("SELECT 1", fp()),
    ],
)
def test_statements_read_and_write_what_they_name(sql: str, expected: Footprint) -> None:
    assert of_sql(sql) == expected


@pytest.mark.fast
@pytest.mark.parametrize(
    "sql",
    [
        "SELECT my_function()",
        "SELECT other.lower('x')",
        "SELECT nextval(name) FROM seqs",
        "SELECT * INTO z FROM t",
        "DO $$ BEGIN PERFORM 1; END $$",
        "CALL p()",
        "VACUUM",
        "EXECUTE plan(1)",
        "CREATE TRIGGER x AFTER INSERT ON t FOR EACH ROW EXECUTE FUNCTION f()",
        "CREATE TABLE c (p int REFERENCES p)",
        "DROP TABLE t CASCADE",
        "ALTER TABLE t ENABLE TRIGGER ALL",
        "COMMIT",
        "ROLLBACK",
        "ROLLBACK TO SAVEPOINT a",
        "BEGIN ISOLATION LEVEL SERIALIZABLE",
        "SET default_transaction_isolation = 'repeatable read'",
        "RESET ALL",
        "SELECT FROM",
        "UPDATE t SET n = 1; SELECT f()",
    ],
)
def test_what_cannot_be_said_touches_everything(sql: str) -> None:
    assert of_sql(sql) is None
    assert conflicts(of_sql(sql), Footprint())


@pytest.mark.fast
def test_conflicts() -> None:
    read_t, write_t, write_u = (
        of_sql("SELECT * FROM t"),
        of_sql("UPDATE t SET n = 1"),
        fp(writes={"u"}),
    )
    assert not conflicts(read_t, read_t)
    assert conflicts(read_t, write_t) and conflicts(write_t, read_t)
    assert conflicts(write_t, write_t)
    assert not conflicts(write_t, write_u)
    # A SELECT ... FOR UPDATE conflicts with writers and other lockers, not with plain reads.
    locker = of_sql("SELECT * FROM t FOR UPDATE")
    assert conflicts(locker, write_t) and conflicts(locker, locker)
    assert conflicts(locker, read_t)  # a plain read may see the row before or after
    lock_1, lock_2 = of_sql("SELECT pg_advisory_lock(1)"), of_sql("SELECT pg_advisory_lock(2)")
    lock_any = of_sql("SELECT pg_advisory_lock($1)")
    assert not conflicts(lock_1, lock_2)
    assert conflicts(lock_1, lock_1) and conflicts(lock_1, lock_any) and conflicts(lock_any, lock_2)
    shared = of_sql("SELECT pg_advisory_lock_shared(1)")
    assert not conflicts(shared, shared) and conflicts(shared, lock_1)
    assert not conflicts(of_sql("SELECT nextval('s')"), read_t)


@pytest.mark.fast
def test_a_schema_names_the_plain_relations_and_what_writes_imply() -> None:
    schema = schema_of(
        "CREATE TABLE t (id serial PRIMARY KEY, n int); CREATE SEQUENCE s;"
        "CREATE TABLE u (n int DEFAULT nextval('s')); CREATE VIEW v AS SELECT * FROM t;"
        "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1';"
        "CREATE INDEX ON t (n); INSERT INTO t (n) SELECT generate_series(1, 3)"
    )
    assert schema == Schema(
        frozenset({"t", "u"}),
        frozenset({"s"}),
        {"t": frozenset(), "u": frozenset({"s"})},
        frozenset({"f"}),
    )
    assert of_sql("INSERT INTO u VALUES (DEFAULT)", schema) == fp(writes={"u", "s"})
    assert of_sql("WITH x AS (SELECT 1) SELECT * FROM x, t", schema) == fp({"t"})
    # A CTE's own query naming its name reads the relation of that name.
    assert of_sql("WITH t AS (SELECT * FROM t) SELECT * FROM t", schema) == fp({"t"})
    for sql in ("SELECT * FROM v", "SELECT f()", "SELECT * FROM pg_locks", "UPDATE w SET n = 1"):
        assert of_sql(sql, schema) is None, sql


@pytest.mark.fast
@pytest.mark.parametrize(
    "setup",
    [
        "CREATE TABLE p (id int PRIMARY KEY); CREATE TABLE c (p int REFERENCES p)",
        "CREATE TABLE p (id int); ALTER TABLE p ADD FOREIGN KEY (id) REFERENCES p (id)",
        "CREATE TABLE p (id int); CREATE TRIGGER x BEFORE INSERT ON p FOR EACH ROW EXECUTE FUNCTION f()",
        "CREATE TABLE p (id int); CREATE RULE r AS ON INSERT TO p DO ALSO NOTIFY p",
        "CREATE TABLE p (id int); CREATE POLICY mine ON p USING (true)",
        "CREATE TABLE p (id int); CREATE TABLE q () INHERITS (p)",
        "CREATE TABLE p (id int) PARTITION BY RANGE (id)",
        "CREATE EXTENSION IF NOT EXISTS pgcrypto",
        "CREATE TABLE p (id int DEFAULT my_default())",
        "CREATE TABLE p (id int); DO $$ BEGIN EXECUTE 'CREATE TRIGGER ...'; END $$",
        "CREATE TABLE p (id int",
    ],
    ids=[
        "foreign-key",
        "added-foreign-key",
        "trigger",
        "rule",
        "policy",
        "inheritance",
        "partition",
        "extension",
        "function-default",
        "do-block",
        "unreadable",
    ],
)
def test_setups_that_tangle_relations_turn_the_reduction_off(setup: str) -> None:
    assert schema_of(setup) is None


@pytest.mark.fast
def test_a_transaction_end_writes_what_the_transaction_touched() -> None:
    s = Session()
    assert s.next("BEGIN") == fp()
    assert s.next("SELECT * FROM t") == fp({"t"})
    assert s.next("SELECT pg_advisory_xact_lock(3)") == fp({ANY_ADVISORY}, {"advisory:3"})
    assert s.next("COMMIT") == fp(writes={"t", "advisory:3", ANY_ADVISORY})
    assert s.next("UPDATE u SET n = 1") == fp(writes={"u"})  # autocommit: its own transaction
    assert s.next("COMMIT") == fp()  # nothing open: a warning only
    assert s.next("BEGIN; UPDATE u SET n = 2; SAVEPOINT a; SELECT * FROM t") == fp({"t"}, {"u"})
    assert s.next("ROLLBACK TO a") == fp(writes={"t", "u"})
    assert s.next("SELECT f()") is None
    assert s.next("ROLLBACK") is None  # the transaction did something unknown
    assert s.next("BEGIN") == fp() and s.next("ROLLBACK") == fp()


@pytest.mark.fast
def test_a_repeatable_read_snapshot_reads_every_relation() -> None:
    schema = schema_of("CREATE TABLE a (n int); CREATE TABLE b (n int)")
    assert schema is not None
    s = Session(schema)
    s.next("BEGIN ISOLATION LEVEL REPEATABLE READ")
    assert s.next("SELECT * FROM a") == fp({"a", "b"})  # takes the snapshot
    assert s.next("SELECT * FROM a") == fp({"a"})
    assert s.next("COMMIT") == fp(writes={"a", "b"})
    assert s.next("SELECT * FROM a") == fp({"a"})  # read committed again
    s.next("SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE")
    assert s.next("SELECT * FROM a") == fp({"a", "b"})
    s.next("BEGIN; SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
    assert s.next("SELECT * FROM a") == fp({"a"})
    s.next("COMMIT; SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ COMMITTED")
    assert s.next("SELECT * FROM a") == fp({"a"})
    s.next("RESET ALL")  # back to the server's default, which may be stricter
    assert s.next("SELECT * FROM a") == fp({"a", "b"})
    # Without a schema, "every relation" cannot be named.
    bare = Session()
    bare.next("BEGIN ISOLATION LEVEL SERIALIZABLE")
    assert bare.next("SELECT * FROM a") is None


RR_SNAPSHOT = """
setup { CREATE TABLE a (n int); CREATE TABLE b (n int); INSERT INTO b VALUES (0); }
teardown { DROP TABLE a; DROP TABLE b; }
session s1
setup { BEGIN ISOLATION LEVEL REPEATABLE READ; }
step s1look { SELECT count(*) FROM a; }
step s1copy { INSERT INTO a SELECT n FROM b; }
step s1commit { COMMIT; }
session s2
step s2set { UPDATE b SET n = 1; }
"""
"""s1's snapshot is taken at its first step, on table a: whether s1 copies b's new
value depends on s2's update of b running before that step, though the step never
names b."""

TWO_TABLES = """
setup { CREATE TABLE a (n int); CREATE TABLE b (n int); INSERT INTO a VALUES (0); INSERT INTO b VALUES (0); }
teardown { DROP TABLE a; DROP TABLE b; }
session s1
step s1a { UPDATE a SET n = n + 1; }
step s1b { UPDATE a SET n = n + 1; }
session s2
step s2a { UPDATE b SET n = n + 1; }
step s2b { UPDATE b SET n = n + 1; }
session s3
step s3a { SELECT n FROM a; }
step s3b { SELECT n FROM b; }
"""


@pytest.mark.parametrize(
    ("text", "invariant", "broken"),
    [
        (RR_SNAPSHOT, "SELECT 1 FROM a WHERE n = 1", ["s2set", "s1look"]),
        (TWO_TABLES, "SELECT 1 FROM a, b WHERE a.n = 1 AND b.n = 2", ["s2b", "s1b"]),
    ],
    ids=["snapshot", "two-tables"],
)
def test_the_reduced_search_finds_what_needs_both_tables(
    target15: Target, tmp_path: Path, text: str, invariant: str, broken: list[str]
) -> None:
    _path, spec = write_spec(tmp_path, text)
    search = Search(spec, (Invariant("inv", invariant, 1),))
    name = target15.dbs.create()
    try:
        found = search.run(target15.dbs.server.conninfo(name))
    finally:
        target15.dbs.drop(name)
    assert found is not None and found.outcome.broken is not None
    assert found.outcome.broken.name == "inv"
    steps = [p.name for p in found.original.steps]
    positions = [steps.index(s) for s in broken]
    assert positions == sorted(positions), steps
    if text is TWO_TABLES:
        assert search.reordered > 0  # the reduction did skip orders
