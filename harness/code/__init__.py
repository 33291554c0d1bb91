"""Race the functions a project already has.

A user's function takes a psycopg connection (or a SQLAlchemy engine, or an
``AsyncConnection`` for ``async def``) and runs on a connection racesim made for
it, where every statement waits for the schedule; ``system(...)`` makes the
``System`` every racesim command, strategy and report takes::

    import racesim.code as rc

    def transfer(conn, src, dst, amount):
        with conn.transaction():
            (balance,) = conn.execute(
                "SELECT balance FROM accounts WHERE id = %s", (src,)).fetchone()
            conn.execute("UPDATE accounts SET balance = %s WHERE id = %s",
                         (balance - amount, src))

    SYSTEM = rc.system(
        "bank",
        schema="CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL)",
        fresh="DELETE FROM accounts; INSERT INTO accounts VALUES (1, 100), (2, 100)",
        variants={"lost-update": transfer},
        actors={"alice": rc.call(1, 2, 30), "bob": rc.call(1, 2, 50)},
        invariants={"money is conserved":
                    "SELECT sum(balance) FROM accounts HAVING sum(balance) <> 200"},
    )
"""

from racesim.code.build import Invocation, call, system
from racesim.code.gate import Stopped

__all__ = ["Invocation", "Stopped", "call", "system"]
