"""A stock decrement in the SQLAlchemy ORM, and the bank transfer as ``async def``
(racesim.code tests)."""

from sqlalchemy import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

import racesim.code as rc


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "items"
    id: Mapped[int] = mapped_column(primary_key=True)
    stock: Mapped[int]


def buy(engine: Engine, item_id: int, lock: bool = False) -> str:
    with Session(engine) as session, session.begin():
        item = session.get(Item, item_id, with_for_update=lock)
        assert item is not None
        if item.stock < 1:
            return "sold out"
        item.stock -= 1
    return "bought"


def buy_locked(engine: Engine, item_id: int) -> str:
    return buy(engine, item_id, lock=True)


def never_oversold(conn, results):  # type: ignore[no-untyped-def]
    (stock,) = conn.execute("SELECT stock FROM items WHERE id = 1").fetchone()
    bought = sum(r == "bought" for r in results.values())
    assert stock + bought == 1, f"{bought} bought, {stock} left of 1"


SHOP = rc.system(
    "shop",
    schema="CREATE TABLE items (id int PRIMARY KEY, stock int NOT NULL)",
    fresh="DELETE FROM items; INSERT INTO items VALUES (1, 1)",
    variants={"orm": buy, "orm-for-update": buy_locked},
    actors={"ann": rc.call(1), "bob": rc.call(1)},
    invariants={"never oversold": never_oversold},
    gives="engine",
)


async def transfer(conn, src, dst, amount, lock=""):  # type: ignore[no-untyped-def]
    async with conn.transaction():
        cur = await conn.execute("SELECT balance FROM accounts WHERE id = %s" + lock, (src,))
        (balance,) = await cur.fetchone()
        await conn.execute(
            "UPDATE accounts SET balance = %s WHERE id = %s", (balance - amount, src)
        )
        await conn.execute(
            "UPDATE accounts SET balance = balance + %s WHERE id = %s", (amount, dst)
        )
    return "done"


async def transfer_for_update(conn, src, dst, amount):  # type: ignore[no-untyped-def]
    return await transfer(conn, src, dst, amount, lock=" FOR UPDATE")


ASYNC_BANK = rc.system(
    "async-bank",
    schema="CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL)",
    fresh="DELETE FROM accounts; INSERT INTO accounts VALUES (1, 100), (2, 100)",
    variants={"read-then-write": transfer, "for-update": transfer_for_update},
    actors={"alice": rc.call(1, 2, 30), "bob": rc.call(1, 2, 50)},
    invariants={"money is conserved": "SELECT 1 FROM accounts HAVING sum(balance) <> 200"},
)
