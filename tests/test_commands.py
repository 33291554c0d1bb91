"""Commands as actors (``commands:FILE.toml``): OS processes whose connections go
through racesim's proxy, here small Python programs using psycopg. Races are found
and shrunk, lock waits are seen on the command's own backend, and commands that
cannot be raced end the run with one line naming the actor."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import psycopg
import pytest
from commands import racesim

from racesim.engine.loop import execute
from racesim.model.plan import Actor, Plan, Step
from racesim.provision.provide import Server
from racesim.system import resolve

PY = sys.executable

COUNTER = """\
setup = "CREATE TABLE IF NOT EXISTS counter (n int); INSERT INTO counter SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM counter)"
reset = "UPDATE counter SET n = 0"
watch = "SELECT n FROM counter"
timeout = 5

[invariants]
no-lost-update = "SELECT n FROM counter WHERE n <> (SELECT count(*) FROM bumps)"

[programs.bump]
command = ["{py}", "bump.py"]

[actors]
b1 = "bump"
b2 = "bump"
"""

BUMP = """\
import os, psycopg
with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as c:
    n = c.execute("SELECT n FROM counter").fetchone()[0]
    c.execute("WITH b AS (INSERT INTO bumps VALUES (1)) UPDATE counter SET n = %s", (n + 1,))
print("bumped to", n + 1)
"""


def project(tmp_path: Path, config: str, **files: str) -> Path:
    (tmp_path / "racesim.toml").write_text(config.replace("{py}", PY))
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return tmp_path / "racesim.toml"


def counter(tmp_path: Path) -> Path:
    config = COUNTER.replace(
        "CREATE TABLE IF NOT EXISTS counter",
        "CREATE TABLE IF NOT EXISTS bumps (one int); CREATE TABLE IF NOT EXISTS counter",
    ).replace('reset = "', 'reset = "TRUNCATE bumps; ')
    return project(tmp_path, config, **{"bump.py": BUMP})


def test_a_lost_update_between_two_commands_is_found_and_replays(
    tmp_path: Path, pg_server: Server
) -> None:
    config = counter(tmp_path)
    out = tmp_path / "out"
    args = ["--system", f"commands:{config}", "--dsn", pg_server.conninfo()]
    found = racesim(
        "explore", *args, "--store", "default", "--strategy", "exhaustive", "--out", str(out)
    )
    assert found.returncode == 1, found.stdout + found.stderr
    assert "no-lost-update" in found.stdout
    saved = sorted(out.glob("*.toml"))
    assert len(saved) == 1
    again = racesim("replay", str(saved[0]), *args)
    assert again.returncode == 1, again.stdout + again.stderr
    assert "reproduced: no-lost-update" in again.stdout
    assert "b1 finished: exit 0: bumped to 1" in again.stdout
    assert "b2 finished: exit 0: bumped to 1" in again.stdout
    # The saved run names the SQL of each round; a command that now sends other SQL
    # is refused, never reported as the same finding.
    text = saved[0].read_text()
    assert 'statements = ["SELECT n FROM counter"' in text
    saved[0].write_text(text.replace('"SELECT n FROM counter"', '"SELECT n + 0 FROM counter"', 1))
    changed = racesim("replay", str(saved[0]), *args)
    assert changed.returncode == 2, changed.stdout + changed.stderr
    assert "round 1 sends 'SELECT n FROM counter', but the saved run sent" in changed.stderr


def test_each_step_records_its_sql(tmp_path: Path, pg_server: Server) -> None:
    config = counter(tmp_path)
    scenario = tmp_path / "serial.toml"
    scenario.write_text(
        textwrap.dedent(
            """\
            name = "one after the other"
            schedule = ["b1: select", "b1: with", "b2: select", "b2: with"]
            stores = ["default"]
            [actors]
            b1 = { program = "bump" }
            b2 = { program = "bump" }
            [expect]
            default = "holds"
            """
        )
    )
    spec = tmp_path / "serial.spec"
    done = racesim(
        "run",
        str(scenario),
        "--system",
        f"commands:{config}",
        "--json",
        "--export-spec",
        str(spec),
        "--dsn",
        pg_server.conninfo(),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    steps = [e for e in events if e.get("type") == "event"]
    assert [s["result"] for s in steps[:2]] == ["SELECT 1", "UPDATE 1"]
    assert steps[0]["sql"] == "SELECT n FROM counter"
    assert steps[-1]["finished"] == "exit 0: bumped to 2"
    # The written .spec's sessions carry their actor's name, as the proxied ones did.
    setups = {
        line.split()[1]: next_line
        for line, next_line in itertools.pairwise(spec.read_text().splitlines())
        if line.startswith("session ")
    }
    assert "SET racesim.actor = 'b1';" in setups["b1"]
    assert "SET racesim.actor = 'b2';" in setups["b2"]


LOCKS = """\
setup = "CREATE TABLE IF NOT EXISTS item (id int PRIMARY KEY, n int); INSERT INTO item VALUES (1, 0) ON CONFLICT DO NOTHING"
reset = "UPDATE item SET n = 0"
timeout = 5

[invariants]
fine = "SELECT 1 WHERE false"

[programs.holder]
command = ["{py}", "holder.py"]

[programs.waiter]
command = ["{py}", "waiter.py"]
"""

HOLDER = """\
import os, psycopg
with psycopg.connect(os.environ["DATABASE_URL"]) as c:
    c.execute("UPDATE item SET n = n + 1 WHERE id = 1")
    c.commit()
"""

WAITER = """\
import os, psycopg
with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as c:
    c.execute("UPDATE item SET n = n + 10 WHERE id = 1")
"""


def test_a_command_waiting_on_a_lock_is_seen_waiting(
    tmp_path: Path, conninfo: str, conn: psycopg.Connection[Any]
) -> None:
    config = project(tmp_path, LOCKS, **{"holder.py": HOLDER, "waiter.py": WAITER})
    system = resolve(f"commands:{config}")
    system.prepare(conn)
    plan = Plan(
        (Actor("h", "holder"), Actor("w", "waiter")),
        (Step("h", "begin"), Step("h", "update"), Step("w", "update"), Step("h", "commit")),
    )
    history = execute(plan, "default", conninfo, system=system).history
    kinds = [(e.actor, e.kind) for e in history.events]
    assert kinds == [("h", "step"), ("h", "step"), ("w", "wait"), ("h", "step"), ("w", "done")]
    wait = history.events[2]
    assert wait.blocked_by == ("h",)
    assert wait.sql == "UPDATE item SET n = n + 10 WHERE id = 1"
    assert [e.result for e in history.events] == ["BEGIN", "UPDATE 1", None, "COMMIT", "UPDATE 1"]
    assert conn.execute("SELECT n FROM item").fetchone() == (11,)


BAD = """\
timeout = 2
setup = "SELECT 1"

[invariants]
fine = "SELECT 1 WHERE false"

[programs.p]
command = {command}

[actors]
x = "p"
"""

NEVER_CONNECTS = "import time\ntime.sleep(60)\n"
HANGS = """\
import os, time, psycopg
c = psycopg.connect(os.environ["DATABASE_URL"], autocommit=True)
c.execute("SELECT 1")
time.sleep(60)
"""
NOT_POSTGRESQL = """\
import os, socket, time
s = socket.socket(socket.AF_UNIX)
s.connect(os.path.join(os.environ["PGHOST"], ".s.PGSQL." + os.environ["PGPORT"]))
s.sendall(b"GET / HTTP/1.1\\r\\n\\r\\n")
time.sleep(60)
"""


AROUND = """\
import os, time, psycopg
proxied = psycopg.connect(os.environ["DATABASE_URL"], autocommit=True)
name = proxied.execute("SELECT current_database()").fetchone()[0]
direct = psycopg.connect(os.environ["REAL_DSN"], dbname=name, autocommit=True)
direct.execute("SELECT 1")
proxied.execute("SELECT 2")
time.sleep(60)
"""


@pytest.mark.parametrize(
    ("script", "says"),
    [
        (NEVER_CONNECTS, "x: the command neither connected to the proxy nor exited within 2s"),
        (HANGS, "x: the command hung: 1 round(s) in"),
        (NOT_POSTGRESQL, "x: a connection to the proxy is not a PostgreSQL client"),
        (None, "programs.p: x: cannot start"),
        (AROUND, "x: a session reached the run's database around the proxy"),
    ],
    ids=["never-connects", "hangs", "not-postgresql", "no-such-program", "around-the-proxy"],
)
def test_a_command_that_cannot_be_raced_ends_the_run_in_one_line(
    tmp_path: Path, pg_server: Server, script: str | None, says: str
) -> None:
    tag = f"racesim-bad-{os.getpid()}-{tmp_path.name}"
    command = f'["{PY}", "bad.py", "{tag}"]' if script else '["./no-such-program"]'
    config = project(tmp_path, BAD.replace("{command}", command), **{"bad.py": script or ""})
    done = racesim(
        "explore",
        "--system",
        f"commands:{config}",
        "--store",
        "default",
        "--strategy",
        "exhaustive",
        "--out",
        str(tmp_path / "out"),
        "--dsn",
        pg_server.conninfo(),
        env={"REAL_DSN": pg_server.conninfo()},
    )
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], done.stderr
    assert "Traceback" not in done.stderr
    left = subprocess.run(["pgrep", "-f", tag], capture_output=True, text=True)
    assert left.stdout == "", f"processes left running: {left.stdout}"


TCP = """\
listen = "tcp"
setup = "CREATE TABLE IF NOT EXISTS seen (who text)"
reset = "TRUNCATE seen"
[invariants]
fine = "SELECT 1 WHERE false"
[programs.psql]
command = ["psql", "-X", "-v", "ON_ERROR_STOP=1", "-c", "INSERT INTO seen VALUES ('{actor}')", "-c", "SELECT count(*) FROM seen"]
"""


def test_a_command_on_tcp_logs_in_with_the_run_password(
    tmp_path: Path, conninfo: str, conn: psycopg.Connection[Any]
) -> None:
    if shutil.which("psql") is None:
        pytest.skip("no psql: apt-get install postgresql-client")
    config = project(tmp_path, TCP)
    system = resolve(f"commands:{config}")
    system.prepare(conn)
    plan = Plan((Actor("p", "psql"),), (Step("p", "insert"), Step("p", "select")))
    history = execute(plan, "default", conninfo, system=system).history
    assert [e.result for e in history.events] == ["INSERT 0 1", "SELECT 1"]
    assert history.events[-1].finished is not None
    assert history.events[-1].finished.startswith("exit 0")
    assert conn.execute("SELECT who FROM seen").fetchall() == [("p",)]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("nonsense = 1\n", "nonsense: expected only"),
        ('timeout = -1\n[invariants]\na = "SELECT 1"\n', "timeout: expected seconds"),
        ('listen = "0.0.0.0"\n', 'listen: expected "unix" or "tcp"'),
        ("[programs.p]\ncommand = []\n[invariants]\na = 'SELECT 1'\n", "programs.p.command"),
        (
            "[invariants]\na = 'SELECT 1'\n[programs.p]\ncommand = ['x']\n[actors]\nq = 'nope'\n",
            "actors: expected a table of actor = program",
        ),
        ("[programs.p\n", "not TOML"),
    ],
    ids=["unknown-key", "timeout", "listen", "empty-command", "unknown-program", "not-toml"],
)
def test_a_bad_commands_file_is_refused_in_one_line(tmp_path: Path, text: str, says: str) -> None:
    config = tmp_path / "racesim.toml"
    config.write_text(text)
    done = racesim("explore", "--system", f"commands:{config}", "--store", "default")
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0] and str(config) in lines[0], done.stderr


def test_bench_proxy_prints_both_ratios(pg_server: Server) -> None:
    done = racesim("bench", "proxy", "--repeat", "1", "--dsn", pg_server.conninfo())
    assert done.returncode == 0, done.stdout + done.stderr
    assert "proxy round trip ratio: " in done.stdout
    assert "proxy schedule ratio: " in done.stdout


APART = """\
setup = "CREATE TABLE IF NOT EXISTS ta (n int); CREATE TABLE IF NOT EXISTS tb (n int); CREATE TABLE IF NOT EXISTS tc (n int)"
reset = "TRUNCATE ta, tb, tc"
[invariants]
tc-empty = "SELECT n FROM tc"
[programs.a]
command = ["{py}", "writes.py", "ta"]
[programs.b]
command = ["{py}", "writes.py", "tb"]
[actors]
a = "a"
b = "b"
"""

WRITES = """\
import os, sys, psycopg
from psycopg import sql
with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as c:
    for n in (1, 2):
        c.execute(sql.SQL("INSERT INTO {} VALUES (%s)").format(sql.Identifier(sys.argv[1])), (n,))
"""


def test_commands_on_different_tables_are_not_reordered(tmp_path: Path, pg_server: Server) -> None:
    """Two commands writing tables no invariant reads: the search runs one order of
    their rounds and skips the reorderings (footprints from each round's SQL)."""
    config = project(tmp_path, APART, **{"writes.py": WRITES})
    done = racesim(
        "explore",
        "--system",
        f"commands:{config}",
        "--store",
        "default",
        "--strategy",
        "exhaustive",
        "--out",
        str(tmp_path / "out"),
        "--dsn",
        pg_server.conninfo(),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    summary = done.stdout.strip().splitlines()[-1]
    explored = int(summary.split("all ")[1].split(" distinct")[0])
    assert explored < 6, summary  # 6 interleavings of 2 and 2 rounds without reduction
    assert "redundant branches skipped" in summary
