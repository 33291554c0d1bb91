"""Bank transfers as plain functions on a psycopg connection (racesim.code tests)."""

import racesim.code as rc


def transfer(conn, src, dst, amount):
    with conn.transaction():
        (balance,) = conn.execute("SELECT balance FROM accounts WHERE id = %s", (src,)).fetchone()
        if balance < amount:
            return "insufficient funds"
        conn.execute("UPDATE accounts SET balance = %s WHERE id = %s", (balance - amount, src))
        conn.execute("UPDATE accounts SET balance = balance + %s WHERE id = %s", (amount, dst))
    return "done"


def transfer_for_update(conn, src, dst, amount):
    with conn.transaction():
        (balance,) = conn.execute(
            "SELECT balance FROM accounts WHERE id = %s FOR UPDATE", (src,)
        ).fetchone()
        if balance < amount:
            return "insufficient funds"
        conn.execute("UPDATE accounts SET balance = %s WHERE id = %s", (balance - amount, src))
        conn.execute("UPDATE accounts SET balance = balance + %s WHERE id = %s", (amount, dst))
    return "done"


SYSTEM = rc.system(
    "bank",
    schema="CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL)",
    fresh="DELETE FROM accounts; INSERT INTO accounts VALUES (1, 100), (2, 100)",
    variants={"lost-update": transfer, "for-update": transfer_for_update},
    actors={"alice": rc.call(1, 2, 30), "bob": rc.call(1, 2, 50)},
    invariants={
        "money is conserved": "SELECT sum(balance) FROM accounts HAVING sum(balance) <> 200"
    },
    watch_sql="SELECT id, balance FROM accounts ORDER BY id",
)


def lookup(conn, account):
    """Touches no table racesim gates: it never sends a statement."""
    return account


SILENT = rc.system(
    "silent",
    schema="CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL)",
    variants={"only": lookup},
    actors={"alice": rc.call(1), "bob": rc.call(2)},
    invariants={"none": "SELECT 1 WHERE false"},
)

NOT_A_QUERY = rc.system(
    "bad-invariant",
    schema="CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL)",
    variants={"only": transfer},
    actors={"alice": rc.call(1, 2, 30)},
    invariants={"wipes": "DELETE FROM accounts"},
)


def transfer_aside(conn, src, dst, amount):
    """Logs the transfer on a connection of its own: racesim does not gate that one."""
    import psycopg

    info = conn.info
    with psycopg.connect(
        host=info.host,
        port=info.port,
        user=info.user,
        password=info.password,
        dbname=info.dbname,
        autocommit=True,
    ) as own:
        own.execute("SELECT 1")
        return transfer(conn, src, dst, amount)


ASIDE = rc.system(
    "aside",
    schema="CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL)",
    fresh="DELETE FROM accounts; INSERT INTO accounts VALUES (1, 100), (2, 100)",
    variants={"only": transfer_aside},
    actors={"alice": rc.call(1, 2, 30)},
    invariants={"money is conserved": "SELECT 1 FROM accounts HAVING sum(balance) <> 200"},
)


def every_kind(conn):
    """One statement of each kind psycopg sends, outside autocommit."""
    with conn.cursor() as cur:
        cur.executemany("UPDATE accounts SET balance = balance WHERE id = %s", [(1,), (2,)])
    conn.commit()
    with conn.cursor().copy("COPY accounts (id, balance) FROM STDIN") as copy:
        copy.write_row((3, 0))
    conn.rollback()
    with conn.cursor("named") as named:
        named.execute("SELECT id FROM accounts ORDER BY id")
        first = named.fetchone()
    rows = list(conn.cursor().stream("SELECT id FROM accounts ORDER BY id"))
    conn.commit()
    return first[0] + len(rows)


KINDS = rc.system(
    "kinds",
    schema="CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL)",
    fresh="DELETE FROM accounts; INSERT INTO accounts VALUES (1, 100), (2, 100)",
    variants={"only": every_kind},
    actors={"alice": rc.call()},
    invariants={"three accounts never": "SELECT 1 FROM accounts HAVING count(*) > 2"},
    autocommit=False,
)


def total(conn):
    return conn.execute("SELECT sum(balance) FROM accounts").fetchone()[0]


def audit_sees_whole_transfers(conn, results):
    assert results["auditor"] == 200, f"the auditor saw {results['auditor']}"
    assert results["alice"] == "done", f"alice: {results['alice']!r}"


def credit_first(conn, src, dst, amount):
    """Autocommit, no transaction: the credit is visible before the debit."""
    conn.execute("UPDATE accounts SET balance = balance + %s WHERE id = %s", (amount, dst))
    conn.execute("UPDATE accounts SET balance = balance - %s WHERE id = %s", (amount, src))
    return "done"


ROLES = rc.system(
    "roles",
    schema="CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL)",
    fresh="DELETE FROM accounts; INSERT INTO accounts VALUES (1, 100), (2, 100)",
    variants={
        "transaction": {"pay": transfer, "audit": total},
        "autocommit": {"pay": credit_first, "audit": total},
    },
    actors={"alice": rc.call(1, 2, 30).of("pay"), "auditor": rc.call().of("audit")},
    invariants={"audit sees whole transfers": audit_sees_whole_transfers},
)
