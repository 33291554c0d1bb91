"""Hostile scenario files: exit 2, one line per problem naming file, line and fix."""

from __future__ import annotations

import importlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from racesim.cli.main import main
from racesim.errors import InputError
from racesim.formats.scenario import MAX_BYTES, load, parse

BAD = Path(__file__).parent / "bad_scenarios"
EXPECTED = dict(
    line.split("\t")
    for line in (BAD / "EXPECTED.txt").read_text().splitlines()
    if line and not line.startswith("#")
)


def test_corpus_is_complete() -> None:
    files = {p.name for p in BAD.glob("*.toml")}
    assert files == set(EXPECTED) and len(files) >= 25


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_scenario_is_refused_with_file_line_and_fix(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = BAD / name
    assert main(["run", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.strip().splitlines()
    assert lines, "no message"
    assert "Traceback" not in err
    for line in lines:
        assert re.match(rf"^{re.escape(str(path))}:\d+: \S", line), line
        assert len(line) < 400
    assert any(EXPECTED[name] in line for line in lines), err


def test_all_problems_of_a_file_are_listed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "many.toml"
    bad.write_text(
        'schedule = [\n  "T+0 ghost: mark",\n  "-1m",\n]\n\n'
        '[actors]\nuser = { program = "nope" }\n\n[expect]\ntoken = "maybe"\n'
    )
    assert main(["run", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) >= 4
    assert any(":2: unknown actor 'ghost'" in e for e in err)
    assert any(":3: clock move" in e for e in err)
    assert any(":7: actor user: unknown program" in e for e in err)


def test_bad_input_starts_nothing(tmp_path: Path) -> None:
    """A bad file is refused before any PostgreSQL is provisioned."""
    runs = tmp_path / "runs"
    runs.mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "racesim.cli.main", "run", str(BAD / "unknown-actor.toml")],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "RACESIM_RUN_DIR": str(runs)},
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert list(runs.iterdir()) == []


def test_missing_file_and_bad_option(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "/nonexistent/x.toml"]) == 2
    assert "cannot read the scenario" in capsys.readouterr().err
    assert main(["run", "scenarios", "--store", "mysql"]) == 2
    assert "unknown store 'mysql'" in capsys.readouterr().err


def _racesim(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> Usage:
    """Run the command in a child; its exit status, output and resource use (wait4)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        child = subprocess.Popen(
            [sys.executable, "-m", "racesim.cli.main", *args],
            stdout=out,
            stderr=err,
            cwd=cwd,
            env={**os.environ, **(env or {})},
        )
        deadline = time.monotonic() + 60
        while (done := os.wait4(child.pid, os.WNOHANG))[0] == 0:
            if time.monotonic() > deadline:
                child.kill()
                child.wait()
                pytest.fail(f"racesim {' '.join(args)[:80]} hangs")
            time.sleep(0.01)
        child.returncode = os.waitstatus_to_exitcode(done[1])
        out.seek(0)
        err.seek(0)
        usage = done[2]
        return Usage(
            child.returncode,
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace"),
            usage.ru_utime + usage.ru_stime,
            usage.ru_maxrss * 1024,
        )


@dataclass
class Usage:
    status: int
    out: str
    err: str
    cpu_seconds: float
    peak_bytes: int


def _one_line_refusal(result: Usage, path: Path | str, fragment: str) -> None:
    assert result.status == 2, result.err
    assert "Traceback" not in result.err
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{path}"), lines
    assert fragment in lines[0], lines


def test_special_files_are_refused_before_anything_is_read(tmp_path: Path) -> None:
    """A link to /dev/zero, a device, a FIFO (alone or in a folder) and a huge sparse
    file: each refused from its metadata, at once, without reading or blocking."""
    zero = tmp_path / "zero.toml"
    zero.symlink_to("/dev/zero")
    fifo = tmp_path / "pipe.toml"
    os.mkfifo(fifo)
    folder = tmp_path / "folder"
    folder.mkdir()
    os.mkfifo(folder / "a.toml")
    holder = tmp_path / "holder"
    (holder / "sub.toml").mkdir(parents=True)
    sparse = tmp_path / "sparse.toml"
    with sparse.open("wb") as f:
        f.truncate(4 * 2**30)
    cases = [
        (zero, "is a symbolic link"),
        (Path("/dev/zero"), "is a character device"),
        (fifo, "is a FIFO"),
        (folder, "is a FIFO"),
        (holder, "is a folder"),
        (sparse, f"more than {MAX_BYTES}"),
    ]
    for path, fragment in cases:
        result = _racesim("run", str(path), "--store", "model")
        shown = {folder: folder / "a.toml", holder: holder / "sub.toml"}.get(path, path)
        _one_line_refusal(result, shown, fragment)
        assert result.peak_bytes < 200 * 2**20, (path, result.peak_bytes)
        assert result.cpu_seconds < 2, (path, result.cpu_seconds)


def test_a_link_to_a_scenario_is_refused_with_the_file_to_name(tmp_path: Path) -> None:
    link = tmp_path / "link.toml"
    link.symlink_to((BAD.parent.parent / "scenarios" / "two-users-refresh.toml").resolve())
    with pytest.raises(InputError, match=r"name the file itself .*two-users-refresh\.toml"):
        load(link)


def _as_user(user: str, cwd: Path, argv: list[str]) -> tuple[int, str]:
    """``main(argv)`` in a forked child that runs as ``user`` (needs root)."""
    import pwd

    pw = pwd.getpwnam(user)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 99
        try:
            os.close(read)
            os.dup2(write, 1)
            os.dup2(write, 2)
            sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
            sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
            os.setgroups([])
            os.setgid(pw.pw_gid)
            os.setuid(pw.pw_uid)
            os.chdir(cwd)
            code = main(argv)
        except BaseException:
            import traceback

            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    os.close(write)
    with os.fdopen(read) as f:
        text = f.read()
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), text


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")


@needs_root
def test_unreadable_folders_as_an_unprivileged_user() -> None:
    """A scenario inside a chmod-000 folder, the folder itself, and --out in a folder
    the user may not write: one line each, exit 2, before any search."""
    # imported before the child drops root (the interpreter's own files stay readable)
    for module in ("racesim.cli.explore", "racesim.explore.run", "racesim.runner"):
        importlib.import_module(module)

    top = Path(tempfile.mkdtemp(prefix="racesim-perm-"))
    try:
        top.chmod(0o755)
        locked = top / "locked"
        locked.mkdir()
        (locked / "s.toml").write_text((BAD / "unknown-actor.toml").read_text())
        locked.chmod(0)
        readonly = top / "readonly"
        readonly.mkdir(mode=0o755)
        status, text = _as_user("postgres", top, ["run", "locked/s.toml", "--store", "model"])
        assert status == 2 and "Traceback" not in text, text
        assert text.strip() == (
            "locked/s.toml: cannot read the scenario (Permission denied); check the path"
            " and that you may read it and every folder above it"
        )
        status, text = _as_user("postgres", top, ["run", "locked", "--store", "model"])
        assert status == 2 and "Traceback" not in text, text
        assert text.strip().startswith("locked: cannot list the folder (Permission denied)")
        status, text = _as_user(
            "postgres",
            top,
            ["explore", "--store", "model", "--max-examples", "100000", "--out", "readonly/x"],
        )
        assert status == 2 and "Traceback" not in text, text
        assert text.strip() == (
            "--out readonly/x: cannot write there (Permission denied); name a folder you may write"
        )
        assert list(readonly.iterdir()) == []
    finally:
        (top / "locked").chmod(0o700)
        shutil.rmtree(top)


def test_out_is_checked_before_anything_starts(tmp_path: Path) -> None:
    """--out at a file, under /proc or where nothing may be written: refused before a
    server is provisioned or a schedule is run."""
    runs = tmp_path / "runs"
    runs.mkdir()
    taken = tmp_path / "taken"
    taken.write_text("")
    cases = [
        (str(taken), "is a file, not a folder"),
        ("/proc/x", "cannot write there"),
        ("/proc/self/status/x", "cannot write there"),
    ]
    for out, fragment in cases:
        result = _racesim(
            "explore",
            "--store",
            "token",
            "--max-examples",
            "100000",
            "--out",
            out,
            env={"RACESIM_RUN_DIR": str(runs)},
        )
        _one_line_refusal(result, f"--out {out}", fragment)
        assert list(runs.iterdir()) == []
    assert taken.read_text() == ""


def test_control_characters_in_names_are_escaped_on_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "colour.toml"
    path.write_text(
        'name = "\\u001b[31mred\\u0000 \\u202egnp.exe\\u0007"\nstores = ["model"]\n'
        'schedule = ["T+0 user: get_freshness"]\n\n'
        '[actors]\nuser = { program = "refresh" }\n\n[expect]\nmodel = "holds"\n'
    )
    assert main(["run", str(path)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x00" not in out and "\u202e" not in out and "\x07" not in out
    assert "\\x1b[31mred\\x00 \\u202egnp.exe\\x07" in out
    # a file name is shown escaped too
    odd = tmp_path / "a\x1b[2Jb.toml"
    odd.write_text("x = [")
    assert main(["run", str(odd)]) == 2
    err = capsys.readouterr().err
    assert "\x1b" not in err and "a\\x1b[2Jb.toml" in err


def _worst_inputs(tmp_path: Path) -> list[Path]:
    """The hostile corpus's largest files, and a 10,000-step schedule that is accepted."""
    pollers = "".join(f'u{i} = {{ program = "poll", polls = 1000 }}\n' for i in range(50))
    steps = "".join(f'  "u{i % 50}: get_freshness",\n' for i in range(9998))
    accepted = tmp_path / "accepted-10000.toml"
    accepted.write_text(
        'stores = ["model"]\nschedule = [\n  "T+0 user: get_freshness",\n  "T+1 user: mark",\n'
        f'{steps}]\n\n[actors]\nuser = {{ program = "refresh" }}\n{pollers}\n'
        '[expect]\nmodel = "holds"\n'
    )
    tables = tmp_path / "tables.toml"
    tables.write_text("".join(f"[t{i}]\n" for i in range(120_000))[:MAX_BYTES])
    strings = tmp_path / "strings.toml"
    strings.write_text('x = "' + "\\u0041" * (MAX_BYTES // 6 - 2) + '"\n')
    big = sorted(BAD.glob("*.toml"), key=lambda p: p.stat().st_size)[-6:]
    named = [BAD / n for n in ("nested-5000-brackets.toml", "seed-5000-digits.toml")]
    return [*big, *named, accepted, tables, strings]


def test_any_input_up_to_1_mb_is_answered_within_2_s_and_200_mb(tmp_path: Path) -> None:
    """A bound, not a benchmark: CPU time and peak memory of the whole command."""
    worst = _worst_inputs(tmp_path)
    assert all(p.stat().st_size <= MAX_BYTES for p in worst)
    driver = "import sys; from racesim.formats.scenario import load; load(sys.argv[1])"
    for path in worst:
        with tempfile.TemporaryFile() as err:
            child = subprocess.Popen([sys.executable, "-c", driver, str(path)], stderr=err)
            _, status, usage = os.wait4(child.pid, 0)
            child.returncode = os.waitstatus_to_exitcode(status)
            err.seek(0)
            text = err.read().decode()
        accepted = path.name == "accepted-10000.toml"
        assert (child.returncode == 0) if accepted else ("InputError" in text), text[-500:]
        cpu = usage.ru_utime + usage.ru_stime
        assert cpu < 2.0, f"{path.name}: {cpu:.2f} s of CPU"
        assert usage.ru_maxrss * 1024 < 200 * 2**20, f"{path.name}: {usage.ru_maxrss} KiB"


def test_too_many_actors_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    """260 actors would need 260 sessions: refused before any is opened, in one line."""
    path = BAD / "actors-260.toml"
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"{path}:265: 260 actors, more than 64 (each holds a PostgreSQL session of its own);"
        " split the scenario"
    ]


@pytest.mark.parametrize(("system", "program"), [(None, "cron"), ("jobqueue", "producer")])
def test_the_fix_for_a_missing_or_bad_actor_names_a_program_of_the_system(
    system: str | None, program: str
) -> None:
    """The example in the fix is a program the scenario's system has, not the reference's."""
    for text, line in (('name = "x"\n', 1), ("[actors]\na = 3\n", 2)):
        with pytest.raises(InputError) as caught:
            parse(text, "x.toml", system)
        first = caught.value.problems[0]
        assert first.startswith(f"x.toml:{line}: "), first
        assert f'program = "{program}" }}' in first, first
