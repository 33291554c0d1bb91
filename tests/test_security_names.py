"""Names and paths from users' files stay data: a name never becomes a path outside
``--out`` or grammar in a written ``.spec``; root never follows another user's link
on the way to an output; a scenario file never imports code on its own."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from commands import racesim
from spec_support import Target, target15

from racesim.errors import InputError
from racesim.formats.bounds import MAX_DIGITS
from racesim.formats.scenario import parse
from racesim.provision.databases import Databases
from racesim.spec.explore import Invariant, load_invariants, permutation_steps, spec_text
from racesim.spec.parse import Permutation, PermutationStep, load, parse_text

__all__ = ["target15"]

ROOT = Path(__file__).resolve().parent.parent
BOOKING = ROOT / "tests" / "specs" / "double-booking.spec"
T0_T4 = ROOT / "scenarios" / "t0-t4-cron-wipes-user.toml"
ROLE = f"racesim_injected_{os.getpid()}"
INJECTED = f"setup {{ CREATE ROLE {ROLE}; }}"
"""Grammar that would create a role (a cluster-wide object, so it outlives the
throwaway database isolationtester ran in) if it ever became part of a .spec."""


def _booking(folder: Path, name: str, invariant: str) -> Path:
    """The double-booking spec under ``name``, with one invariant named ``invariant``."""
    spec = folder / name
    spec.write_bytes(BOOKING.read_bytes())
    sql = "SELECT seat, count(*) AS people FROM seats GROUP BY seat HAVING count(*) > 1"
    key = invariant.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    spec.with_name(name + ".toml").write_text(f'[invariants]\n"{key}" = "{sql}"\n')
    return spec


def _role_made(target: Target) -> bool:
    with psycopg.connect(target.dbs.server.conninfo(), autocommit=True) as conn:
        found = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (ROLE,)).fetchone()
        if found:
            conn.execute(f"DROP ROLE {ROLE}")
    return found is not None


def _files(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()}


# -- 1. names become paths and grammar ---------------------------------------


def test_an_invariant_name_never_leads_outside_out(target15: Target, tmp_path: Path) -> None:
    specs, out = tmp_path / "specs", tmp_path / "a" / "b" / "out"
    specs.mkdir()
    spec = _booking(specs, "booking.spec", "a/../../../x")
    before = _files(tmp_path)
    done = racesim("explore", str(spec), "--out", str(out), "--dsn", target15.dbs.server.conninfo())
    assert done.returncode == 1, done.stdout + done.stderr
    made = _files(tmp_path) - before
    assert made and all(out in p.parents for p in made), made
    [saved] = made
    assert saved == out / "booking-a_.._.._.._x.spec"  # one name: no folder, no climbing
    status, printed = target15.reference(saved)
    assert status == 0 and b"(1 row)" in printed


def test_a_spec_file_name_never_becomes_grammar_in_a_saved_spec(
    target15: Target, tmp_path: Path
) -> None:
    spec = _booking(tmp_path, f"x\n{INJECTED}\n#.spec", "one-person-per-seat")
    out = tmp_path / "out"
    done = racesim("explore", str(spec), "--out", str(out), "--dsn", target15.dbs.server.conninfo())
    assert done.returncode == 1, done.stdout + done.stderr
    [saved] = out.iterdir()
    assert "\n" not in saved.name
    assert len(load(saved).setups) == 1
    status, printed = target15.reference(saved)
    assert status == 0, printed.decode()
    assert not _role_made(target15)


def test_an_invariant_name_with_a_newline_is_refused(target15: Target, tmp_path: Path) -> None:
    spec = _booking(tmp_path, "booking.spec", f"x\n{INJECTED}\n#")
    out = tmp_path / "out"
    done = racesim("explore", str(spec), "--out", str(out), "--dsn", target15.dbs.server.conninfo())
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"{spec}.toml:2: invariant name " in done.stderr
    assert "control character" in done.stderr
    assert not out.exists()


def test_spec_text_escapes_names_in_comments_and_quotes_the_check_step(
    target15: Target, tmp_path: Path
) -> None:
    """Past the loader (an Invariant made in Python), the written .spec still holds
    only what racesim meant: the real isolationtester runs it and makes no role."""
    spec = parse_text(BOOKING.read_text(), f"x\n{INJECTED}\n#.spec")
    evil = Invariant(f"y\r{INJECTED}\n#", "SELECT 1", 1)
    names = ("a_book", "b_book", "a_commit", "b_commit")
    perm = Permutation(tuple(PermutationStep(n) for n in names))
    text = spec_text(spec, permutation_steps(spec, perm), 1, evil)
    again = parse_text(text, "saved.spec")
    assert len(again.setups) == 1 and again.teardown is not None
    assert [s.name for s in again.sessions] == ["alice", "bob", "racesim_check"]
    assert [p.name for p in again.permutations[0].steps][:2] == ["a_book", "b_book"]
    saved = tmp_path / "saved.spec"
    saved.write_text(text)
    status, printed = target15.reference(saved)
    assert status == 0, printed.decode()
    assert not _role_made(target15)


def test_an_export_refuses_a_run_name_holding_a_control_character(databases: Databases) -> None:
    """A plan made in Python (the plugin's ``race``) may name its runs anything; a name
    that no .spec can hold on one line is refused, not written."""
    from racesim.engine.loop import Options
    from racesim.model.plan import Actor, Plan, Step
    from racesim.runner import run_plan
    from racesim.spec.export import export_spec
    from racesim.store.system import SYSTEM

    actor = Actor(f"u\n{INJECTED}", "refresh")
    plan = Plan((actor,), (Step(actor.name, "get_freshness", "T+0"),))
    outcome = run_plan(plan, "legacy", databases, Options(), system=SYSTEM)
    with pytest.raises(InputError, match=r"the name 'u\\\\x0asetup.* holds the control character"):
        export_spec(outcome, plan.actors, databases.server, "legacy")


def test_a_scenario_file_name_never_becomes_grammar_in_an_export(
    target15: Target, tmp_path: Path
) -> None:
    body = "".join(
        line for line in T0_T4.read_text().splitlines(True) if not line.startswith("name =")
    )
    scenario = tmp_path / f"t0\n{INJECTED}\n#.toml"
    scenario.write_text(body)
    out = tmp_path / "run.spec"
    dsn = target15.dbs.server.conninfo()
    done = racesim(
        "run", str(scenario), "--store", "legacy", "--export-spec", str(out), "--dsn", dsn
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(load(out).setups) == 1
    status, printed = target15.reference(out)
    assert status == 0, printed.decode()
    assert not _role_made(target15)


def test_saved_scenario_keys_are_quoted_names() -> None:
    """A session name of a .spec (any text but a newline) becomes an actor name of
    the spec's system, and a key of a saved counterexample: quoted, it stays one key."""
    import tomllib

    from racesim.formats.writer import scenario_text
    from racesim.model.plan import Actor, Plan, Step

    evil = 'a = { program = "other" } #'
    plan = Plan((Actor(evil, evil),), (Step(evil, "s1", "T+0"),), seed=1)
    text = scenario_text(plan, "spec", "inv", "T+0", name="n", system="spec:/x.spec")
    data = tomllib.loads(text)
    assert data["actors"] == {evil: {"program": evil}}
    assert data["expect"] == {"spec": {"breaks": "inv", "at": "T+0"}}


# -- 4. links planted by another user ----------------------------------------


@pytest.fixture
def planted() -> Iterator[tuple[Path, Path]]:
    """A sticky world-writable folder (like /tmp) holding a link ``link`` that
    ``nobody`` planted, pointing at a folder of root's (the victim); skips unless root."""
    if os.geteuid() != 0:
        pytest.skip("planting as another user needs root")
    nobody = pwd.getpwnam("nobody")
    as_nobody: dict[str, Any] = {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}
    root = Path(tempfile.mkdtemp(prefix="racesim-test-links-"))
    root.chmod(0o755)
    shared, victim = root / "shared", root / "victim"
    shared.mkdir(mode=0o1777)
    shared.chmod(0o1777)
    victim.mkdir()
    subprocess.run(["ln", "-s", str(victim), str(shared / "link")], check=True, **as_nobody)
    try:
        yield shared / "link", victim
    finally:
        shutil.rmtree(root)


def test_out_through_another_users_link_is_refused(
    planted: tuple[Path, Path], target15: Target
) -> None:
    link, victim = planted
    dsn = target15.dbs.server.conninfo()
    for argv in (
        ["explore", str(BOOKING), "--out", str(link / "found"), "--dsn", dsn],
        ["explore", "--store", "model", "--max-examples", "5", "--out", str(link / "found")],
        ["explore", "--store", "model", "--max-examples", "5", "--out", str(link)],
    ):
        done = racesim(*argv)
        assert done.returncode == 2, (argv, done.stdout, done.stderr)
        [line] = done.stderr.splitlines()
        assert f"refusing {link}: a symbolic link owned by uid" in line
        assert list(victim.iterdir()) == []


def test_html_and_export_spec_through_another_users_link_are_refused(
    planted: tuple[Path, Path], target15: Target
) -> None:
    link, victim = planted
    dsn = target15.dbs.server.conninfo()
    for argv in (
        ["run", str(T0_T4), "--store", "model", "--html", str(link / "page.html")],
        [
            "run",
            str(T0_T4),
            "--store",
            "legacy",
            "--export-spec",
            str(link / "x.spec"),
            "--dsn",
            dsn,
        ],
        ["run", str(BOOKING), "--html", str(link / "page.html"), "--dsn", dsn],
    ):
        done = racesim(*argv)
        assert done.returncode == 2, (argv, done.stdout, done.stderr)
        assert f"refusing {link}: a symbolic link owned by uid" in done.stderr
        assert list(victim.iterdir()) == []


def test_the_example_database_never_passes_another_users_link(
    planted: tuple[Path, Path], tmp_path: Path
) -> None:
    link, victim = planted
    argv = ["explore", "--store", "model", "--strategy", "hypothesis", "--max-examples", "5"]
    done = racesim(*argv, "--out", str(tmp_path / "o"), env={"RACESIM_CACHE": str(link / "cache")})
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"refusing {link}: a symbolic link owned by uid" in done.stderr
    assert list(victim.iterdir()) == []


def test_save_refuses_another_users_link_met_after_the_checks(planted: tuple[Path, Path]) -> None:
    from racesim.formats.writer import save

    link, victim = planted
    with pytest.raises(InputError, match="a symbolic link owned by uid"):
        save("text\n", link / "deeper" / "file.toml")
    assert list(victim.iterdir()) == []


def test_links_of_root_and_real_folders_are_still_followed(tmp_path: Path) -> None:
    from racesim.formats.writer import save

    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "mine").symlink_to(real)
    assert save("ok\n", tmp_path / "mine" / "sub" / "f.toml").read_text() == "ok\n"
    assert (real / "sub" / "f.toml").read_text() == "ok\n"


# -- 5. a data file that runs code --------------------------------------------

EVIL = """
from pathlib import Path
Path("imported").write_text("evilmod ran")
from racesim.store.system import SYSTEM
"""


def _evil_scenario(folder: Path) -> Path:
    (folder / "evilmod.py").write_text(EVIL)
    body = T0_T4.read_text().replace('stores = ["legacy", "token", "model"]', 'stores = ["model"]')
    scenario = folder / "evil.toml"
    scenario.write_text('system = "evilmod:SYSTEM"\n' + body)
    return scenario


def test_a_scenario_file_alone_never_imports_a_module(tmp_path: Path) -> None:
    scenario = _evil_scenario(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "racesim.cli.main", "run", scenario.name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    [line] = done.stderr.splitlines()
    assert line.startswith("evil.toml:1: ") and "--system evilmod:SYSTEM" in line
    assert not (tmp_path / "imported").exists()
    # Named on the command line too, the same system loads and runs.
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "racesim.cli.main",
            "run",
            scenario.name,
            "--system",
            "evilmod:SYSTEM",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "imported").exists()


def test_parse_imports_only_what_the_caller_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario = _evil_scenario(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, "evilmod", raising=False)
    with pytest.raises(InputError, match="pass --system evilmod:SYSTEM"):
        parse(scenario.read_text(), "evil.toml")
    assert "evilmod" not in sys.modules and not (tmp_path / "imported").exists()
    with pytest.raises(InputError, match="pass --system evilmod:SYSTEM"):
        parse(scenario.read_text(), "evil.toml", "jobqueue")
    assert "evilmod" not in sys.modules
    found = parse(scenario.read_text(), "evil.toml", "evilmod:SYSTEM")
    assert found.system is sys.modules["evilmod"].SYSTEM
    monkeypatch.delitem(sys.modules, "evilmod")


# -- 9. small ones --------------------------------------------------------------


def test_no_postgresql_message_is_readable_lines() -> None:
    done = racesim("run", str(T0_T4), "--store", "legacy", "--pg", "docker")
    assert done.returncode == 2
    assert "\\x0a" not in done.stderr
    lines = done.stderr.splitlines()
    assert lines[0] == "racesim: no PostgreSQL available (--pg docker); tried:"
    assert lines[1].startswith("  - docker: ")
    assert lines[-1].startswith("fix: set RACESIM_DSN=")


def test_file_names_are_printed_escaped(target15: Target, tmp_path: Path) -> None:
    spec = tmp_path / "x\ny.spec"
    spec.write_text(
        "setup { CREATE TABLE t (a int); }\nteardown { DROP TABLE t; }\n"
        "session s step a { SELECT 1; }\n"
    )
    spec.with_name(spec.name + ".toml").write_text('[invariants]\nnone = "SELECT 1 WHERE false"\n')
    done = racesim("explore", str(spec), "--dsn", target15.dbs.server.conninfo())
    assert done.returncode == 0, done.stdout + done.stderr
    assert "x\\x0ay.spec: 1 interleavings tried" in done.stdout
    assert "x\ny" not in done.stdout


def test_clean_prints_its_folders_escaped(tmp_path: Path) -> None:
    cache, runs = tmp_path / "c\nd", tmp_path / "runs"
    runs.mkdir()
    done = racesim("clean", env={"RACESIM_CACHE_DIR": str(cache), "RACESIM_RUN_DIR": str(runs)})
    assert done.returncode == 0, done.stderr
    assert f"from {tmp_path}/c\\x0ad and" in done.stdout


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[invariants]\n"" = "SELECT 1 WHERE false"\n',
            r"x\.spec\.toml:2: invariant name is empty",
        ),
        (
            '[invariants]\nsneaky = "SELECT 1 WHERE false; DROP TABLE t"\n',
            r"x\.spec\.toml:2: invariant 'sneaky' holds more than one statement",
        ),
        (
            "[invariants]\nok = \"SELECT ';' AS a; \"\n"
            'two = "SELECT $$;$$ /* ; */ -- ;\\n; SELECT 2"\n',
            r"x\.spec\.toml:3: invariant 'two' holds more than one statement",
        ),
    ],
)
def test_bad_invariant_names_and_statements(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "x.spec.toml"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        load_invariants(path)


def test_one_statement_with_semicolons_inside_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "x.spec.toml"
    path.write_text(
        "[invariants]\n"
        "quoted = \"SELECT ';' AS a, $$;$$ AS b, $t$ ; $t$ AS c, E'\\\\'' AS d /* ; */ ;\"\n"
    )
    [inv] = load_invariants(path)
    assert inv.name == "quoted"


def test_explore_invariant_with_two_statements_is_refused_with_a_reason(
    target15: Target, tmp_path: Path
) -> None:
    spec = tmp_path / "b.spec"
    spec.write_bytes(BOOKING.read_bytes())
    spec.with_name("b.spec.toml").write_text(
        '[invariants]\nsneaky = "SELECT 1 WHERE false; DROP TABLE seats"\n'
    )
    done = racesim(
        "explore", str(spec), "--out", str(tmp_path / "o"), "--dsn", target15.dbs.server.conninfo()
    )
    assert done.returncode == 2
    assert "b.spec.toml:2: invariant 'sneaky' holds more than one statement" in done.stderr


def test_search_never_runs_a_second_statement_the_loader_missed(target15: Target) -> None:
    """Past the loader (an Invariant made in Python), the server itself refuses a
    second statement, with its reason, before any of it runs."""
    from racesim.spec.explore import Search

    sneaky = (Invariant("sneaky", "SELECT 1 WHERE false; DROP TABLE seats", 4),)
    name = target15.dbs.create()
    try:
        with pytest.raises(InputError, match=r"line 4: invariant 'sneaky': .*multiple commands"):
            Search(load(BOOKING), sneaky).run(target15.dbs.server.conninfo(name))
    finally:
        target15.dbs.drop(name)


def test_out_inside_racesims_cache_is_refused(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    env = {"RACESIM_CACHE_DIR": str(cache)}
    for argv in (
        ["explore", "--store", "model", "--out", str(cache / "found")],
        ["explore", str(BOOKING), "--out", str(cache / "found")],
    ):
        done = racesim(*argv, env=env)
        assert done.returncode == 2, done.stdout + done.stderr
        assert "inside racesim's own cache" in done.stderr
    assert not (cache / "found").exists()


def _seed(number: str) -> str:
    return T0_T4.read_text().replace("stores = [", f"seed = {number}\nstores = [", 1)


def test_digit_bound_counts_digits_not_underscores() -> None:
    grouped = "_".join("1" * MAX_DIGITS)  # 30 digits, 59 characters
    # 30 digits parse (the seed's own range check refuses them, not the digit bound).
    with pytest.raises(InputError, match="seed must be a whole number"):
        parse(_seed(grouped), "x.toml")
    assert parse(_seed("1_000"), "x.toml").plan.seed == 1000
    with pytest.raises(InputError, match=f"a number of {MAX_DIGITS + 1} digits"):
        parse(_seed("1_" + "2" * MAX_DIGITS), "x.toml")
