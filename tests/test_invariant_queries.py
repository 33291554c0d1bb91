"""Invariant queries only look (a READ ONLY transaction under the step bound) and read
a bounded number of rows; result tables of spec steps are printed as they are read
from the result, not copied first. Memory is a child process's peak RSS (wait4)."""

from __future__ import annotations

import os
import selectors
import sys
import tempfile
from pathlib import Path

import pytest
from spec_support import Target, target15, write_spec

from racesim.spec.readonly import MAX_ROWS

# A fresh, small interpreter runs racesim as its child and reports that child's peak.
# (A child forked straight from the test process would count the test process's own
# pages, mapped in it until its exec, in its peak.)
_MEASURE = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.executable, [sys.executable, "-m", "racesim.cli.main", *sys.argv[2:]])
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as f:
    f.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status) & 0xFF)
"""

__all__ = ["target15"]

BOOKING = """
setup { CREATE TABLE seats (seat int, person text); }
teardown { DROP TABLE seats; }
session a
step a_book { INSERT INTO seats VALUES (1, 'a'); }
session b
step b_book { INSERT INTO seats VALUES (1, 'b'); }
"""
DOUBLE = "SELECT seat FROM seats GROUP BY seat HAVING count(*) > 1"
# Listed first, it empties the table before the real invariant looks at it.
SNEAKY = "WITH d AS (DELETE FROM seats RETURNING 1) SELECT 1 FROM d WHERE false"
# (a set-returning function in the select list streams: the server stops at the cancel)
MANY = f"SELECT generate_series(1, 3000000) AS g, repeat('x', 100) WHERE EXISTS ({DOUBLE})"


def _spawn_measured(args: list[str]) -> tuple[int, str, str, float]:
    """(status, stdout, stderr, peak MB) of ``racesim ARGS`` run as a child of a small
    interpreter that reaps it with wait4, so its own peak RSS is known."""
    fd, peak = tempfile.mkstemp(prefix="racesim-peak-")
    os.close(fd)
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: racesim, its output into the pipes
        os.close(out_r)
        os.close(err_r)
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.execv(sys.executable, [sys.executable, "-c", _MEASURE, peak, *args])
    os.close(out_w)
    os.close(err_w)
    chunks: dict[int, list[bytes]] = {out_r: [], err_r: []}
    sel = selectors.DefaultSelector()
    for fd in chunks:
        sel.register(fd, selectors.EVENT_READ)
    while sel.get_map():
        for key, _ in sel.select(timeout=300):
            data = os.read(key.fd, 1 << 16)
            if data:
                chunks[key.fd].append(data)
            else:
                sel.unregister(key.fd)
                os.close(key.fd)
    _, status, _usage = os.wait4(pid, 0)
    try:
        kb = int(Path(peak).read_text() or 0)
    finally:
        os.unlink(peak)
    return (
        os.waitstatus_to_exitcode(status),
        b"".join(chunks[out_r]).decode("utf-8", "replace"),
        b"".join(chunks[err_r]).decode("utf-8", "replace"),
        kb / 1024,
    )


def _explore(
    target: Target, tmp_path: Path, invariants: str, strategy: str = "exhaustive"
) -> tuple[int, str, str, float]:
    spec, _ = write_spec(tmp_path, BOOKING, "booking.spec")
    (tmp_path / "booking.spec.toml").write_text("[invariants]\n" + invariants)
    return _spawn_measured(
        [
            "explore",
            str(spec),
            "--strategy",
            strategy,
            "--out",
            str(tmp_path / "out"),
            "--dsn",
            target.dbs.server.conninfo(),
        ]
    )


@pytest.mark.parametrize("strategy", ["exhaustive", "pct"])
def test_an_invariant_that_writes_is_refused_not_a_pass(
    target15: Target, tmp_path: Path, strategy: str
) -> None:
    status, out, err, _mb = _explore(
        target15, tmp_path, f'sneaky = "{SNEAKY}"\ndouble = "{DOUBLE}"\n', strategy
    )
    assert status == 2, out + err
    [line] = err.splitlines()
    assert "invariant 'sneaky' tries to write" in line and "read-only" in line, line
    assert "fix:" in line
    # without it, the double booking is found
    status, out, err, _mb = _explore(target15, tmp_path, f'double = "{DOUBLE}"\n', strategy)
    assert status == 1, out + err


def test_an_invariant_of_3m_rows_reads_1000_of_them(target15: Target, tmp_path: Path) -> None:
    status, out, err, mb = _explore(target15, tmp_path, f'many = "{MANY}"\n')
    assert status == 1, out + err
    assert f"  returned {MAX_ROWS} or more rows\n" in out
    assert "  row: 1|" + "x" * 100 + "\n" in out
    assert mb < 120, f"peak {mb:.0f} MB"


def test_an_invariant_of_3m_rows_in_the_spec_system(target15: Target, tmp_path: Path) -> None:
    status, out, err, mb = _explore(target15, tmp_path, f'many = "{MANY}"\n', "pct")
    assert status == 1, out + err
    assert f"({MAX_ROWS} or more rows)" in out
    assert mb < 150, f"peak {mb:.0f} MB"


def test_a_big_result_table_streams_and_prints_what_isolationtester_prints(
    target15: Target, tmp_path: Path
) -> None:
    path, _spec = write_spec(
        tmp_path,
        "session s\nstep big { SELECT g, repeat('x', 1000) AS pad"
        " FROM generate_series(1, 50000) g; }\n",
        "big.spec",
    )
    _status, reference = target15.reference(path)
    status, out, err, mb = _spawn_measured(
        ["run", str(path), "--dsn", target15.dbs.server.conninfo()]
    )
    assert status == 0, err
    assert out.encode() == reference
    assert out.endswith("(50000 rows)\n\n")
    # the result itself is ~52 MB in libpq; isolationtester's peak is ~163 MB
    assert mb < 160, f"peak {mb:.0f} MB"
