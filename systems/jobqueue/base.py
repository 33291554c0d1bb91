"""What both claim variants share: the worker's session, enqueue, the plain read and
the fenced processing. A variant is a ``BaseStore`` with its name and its claim."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import psycopg

from racesim.systems.jobqueue import _sql
from racesim.systems.jobqueue.interface import Claimed


class BaseStore(ABC):
    name: str

    def __init__(self, conn: psycopg.Connection[Any], worker: str) -> None:
        self.conn = conn
        self.worker = worker

    def enqueue(self, payload: str) -> int:
        return _sql.enqueue(self.conn, payload)

    def find(self) -> int | None:
        return _sql.find(self.conn)

    @abstractmethod
    def claim(self, job: int) -> Claimed | None: ...

    def process(self, job: int, attempt: int) -> bool:
        return _sql.process(self.conn, self.worker, job, attempt)

    def close(self) -> None:
        self.conn.close()
