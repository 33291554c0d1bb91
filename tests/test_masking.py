"""Passwords never reach output: parsed by libpq's rules, hidden on every path.

Each password holds the markers QJX and VKW around characters that end a value
for a pattern-based masker (``&``, ``"``, ``'``, ``%``, spaces, ``@``); no output
may contain either marker.
"""

from __future__ import annotations

import traceback
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
from commands import password_cluster, racesim
from psycopg.conninfo import make_conninfo

from racesim.errors import InputError, ProvisionError
from racesim.provision.masking import malformed_reason, mask_dsn, masked_conninfo
from racesim.provision.provide import Sources, provide

ROOT = Path(__file__).parent.parent
SCENARIO = str(ROOT / "scenarios" / "two-users-refresh.toml")
PASSWORDS = [
    "QJX&VKW",
    'QJX"VKW"',
    "QJX'VKW",
    "QJX%26VKW",
    "QJX%VKW",
    "QJX VKW",
    "QJX@VKW",
    "QJX&\"' %@\\VKW",
]


def uri(password: str, host: str = "127.0.0.1:59999", rest: str = "/db") -> str:
    return f"postgresql://racer:{urllib.parse.quote(password, safe='')}@{host}{rest}"


def keywords(password: str, **params: str) -> str:
    return make_conninfo(**{"user": "racer", **params, "password": password})


def assert_hidden(text: str) -> None:
    assert "QJX" not in text and "VKW" not in text, text


@pytest.mark.parametrize("password", PASSWORDS)
def test_masked_conninfo_hides_the_whole_password(password: str) -> None:
    for dsn in (uri(password), keywords(password, host="h", dbname="db")):
        shown = masked_conninfo(dsn)
        assert_hidden(shown)
        assert "password=***" in shown and "user=racer" in shown


@pytest.mark.parametrize("password", PASSWORDS)
def test_mask_dsn_hides_passwords_in_free_text(password: str) -> None:
    for dsn in (uri(password), keywords(password, host="h"), uri(password) + "?sslmode=off"):
        assert_hidden(mask_dsn(f"cannot connect to {dsn}: refused\nnext line"))
    query = f"postgresql://h/db?user=u&password={urllib.parse.quote(password, safe='')}&x=1"
    assert_hidden(mask_dsn(f"see {query} there"))


def test_the_reported_leaks_are_closed() -> None:
    assert "dor3" not in mask_dsn("postgresql://u:Tr0ub%26dor3@127.0.0.1:59999/db")
    assert "tail" not in mask_dsn("postgresql://u:ab%22tail@h/db")
    assert "s3cretPW" not in mask_dsn('password="s3cretPW" bogus=1')
    assert "dor3" not in mask_dsn("cannot connect to password=Tr0ub&dor3 host=h")


def test_a_malformed_string_is_never_echoed() -> None:
    for dsn in ('password="QJX" VKW', "password='QJX VKW", "postgresql://u:QJX%zzVKW@h/db"):
        with (
            pytest.raises(InputError) as caught,
            provide(sources=Sources(env={"RACESIM_DSN": dsn})),
        ):
            pass
        text = "".join(traceback.format_exception(caught.value))
        assert_hidden(text)
        assert "RACESIM_DSN: malformed connection string" in str(caught.value)
    assert malformed_reason('invalid connection option "QJX"') == 'invalid connection option "***"'
    assert malformed_reason('missing "=" after "password" in') == 'missing "=" after "password" in'


@pytest.mark.parametrize("password", PASSWORDS)
def test_an_unreachable_server_error_hides_the_password(password: str) -> None:
    dsn = uri(password, host="", rest="/db?host=/nonexistent-racesim-dir")
    with pytest.raises(ProvisionError) as caught, provide(dsn=dsn):
        pass
    assert_hidden("".join(traceback.format_exception(caught.value)))
    assert "password=***" in str(caught.value)


@pytest.fixture(scope="module")
def scram_cluster() -> Iterator[tuple[str, str]]:
    """A cluster where role ``racer`` logs in with each password (one role per password)."""
    with password_cluster({f"racer{n}": p for n, p in enumerate(PASSWORDS)}) as cluster:
        yield cluster.params["host"], cluster.params["port"]


@pytest.mark.parametrize("n", range(len(PASSWORDS)))
def test_wrong_password_error_hides_it(scram_cluster: tuple[str, str], n: int) -> None:
    host, port = scram_cluster
    wrong = PASSWORDS[n] + "QJX"
    for dsn in (
        uri(wrong, host="", rest=f"/postgres?host={host}&port={port}").replace(
            "racer:", f"racer{n}:"
        ),
        make_conninfo(host=host, port=port, dbname="postgres", user=f"racer{n}", password=wrong),
    ):
        proc = racesim("run", SCENARIO, "--store", "token", "--dsn", dsn)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert "password authentication failed" in proc.stderr
        assert "Traceback" not in proc.stderr
        assert_hidden(proc.stdout + proc.stderr)


@pytest.mark.parametrize("form", ["uri-text", "keywords-json"])
def test_right_password_runs_and_no_output_shows_it(
    scram_cluster: tuple[str, str], form: str
) -> None:
    host, port = scram_cluster
    n = len(PASSWORDS) - 1  # the one holding every awkward character
    if form == "uri-text":
        dsn = uri(PASSWORDS[n], host="", rest=f"/postgres?host={host}&port={port}")
        dsn = dsn.replace("racer:", f"racer{n}:")
        args = ["run", SCENARIO, "--store", "token"]
    else:
        dsn = make_conninfo(
            host=host, port=port, dbname="postgres", user=f"racer{n}", password=PASSWORDS[n]
        )
        args = ["run", SCENARIO, "--store", "token", "--json"]
    proc = racesim(*args, env={"RACESIM_DSN": dsn})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert_hidden(proc.stdout + proc.stderr)
