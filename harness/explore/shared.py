"""A Hypothesis example database shared through Redis (``--example-db redis://HOST:PORT/N``).

Every machine exploring the same system, store and configuration reads and
writes one set of saved examples, so a failure one of them finds is tried first
by all the others (Hypothesis's ``RedisExampleDatabase``; needs the ``redis``
package). The examples of every seed are shared: with a shared database, what a
seed finds may depend on what other runs saved, as intended.

Example::

    db = shared_database("redis://127.0.0.1:6379/0", "reference\\0legacy\\0cron+user")
"""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING

from racesim.errors import InputError

if TYPE_CHECKING:
    from hypothesis.database import ExampleDatabase

__all__ = ["check_url", "shared_database", "shown"]

_URL = re.compile(r"^rediss?://[^\s/?#]+(?::\d{1,5})?(?:/\d{1,4})?$")
_SECRET = re.compile(r"(://)([^@/]*)@")


def shown(url: str) -> str:
    """``url`` with any user and password replaced by ``***``."""
    return _SECRET.sub(r"\1***@", url)


def check_url(url: str, strategy: str) -> str:
    """``url`` when it names a Redis database racesim can reach; InputError otherwise."""
    if strategy != "hypothesis":
        raise InputError(
            f"--example-db: only the hypothesis strategy keeps examples, not {strategy};"
            " drop --example-db or use --strategy hypothesis"
        )
    if not _URL.match(url):
        raise InputError(
            f"--example-db: expected redis://HOST:PORT/N (or rediss://), got {shown(url)!r}"
        )
    try:
        import redis
    except ImportError:
        raise InputError("--example-db: needs the redis package; fix: pip install redis") from None
    client = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=5)
    try:
        client.ping()
    except redis.exceptions.RedisError as exc:
        raise InputError(
            f"--example-db: cannot reach {shown(url)} ({' '.join(str(exc).split())});"
            " fix: start Redis there or drop --example-db"
        ) from None
    finally:
        client.close()
    return url


def shared_database(url: str, key: str) -> ExampleDatabase:
    """The Redis example database at ``url`` for explorations named by ``key`` (the
    system, store and configuration; not the seed)."""
    import redis
    from hypothesis.extra.redis import RedisExampleDatabase

    digest = hashlib.sha256(key.encode()).hexdigest()[:24]
    client = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=30)
    return RedisExampleDatabase(client, key_prefix=f"racesim:{digest}:".encode())
