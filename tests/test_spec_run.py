"""racesim runs isolation specs printing exactly what isolationtester prints.

Every comparison is against the real isolationtester of the same PostgreSQL
version, on the same server, in the same test: the 30 shared PostgreSQL specs, and
small specs written here for the behaviour they do not reach (notices, notice
markers, failing setup and teardown, step timeouts, COPY, empty results).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from spec_support import SHARED, SPECS, Target, need_shared, target, target15, write_spec

from racesim.spec.parse import load

__all__ = ["target", "target15"]


@pytest.mark.parametrize("path", SPECS or [None], ids=lambda p: p.stem if p else "none")
def test_shared_spec_prints_what_isolationtester_prints(target: Target, path: Path | None) -> None:
    need_shared()
    assert path is not None
    status, reference = target.reference(path)
    completed, ours = target.racesim(load(path))
    assert status == 0 and completed
    assert ours == reference
    expected = (SHARED / "expected" / f"{path.stem}.out").read_bytes()
    if target.version == 15:
        # The shared files were made with PostgreSQL 15's isolationtester.
        assert ours == expected


def _same(target: Target, tmp_path: Path, text: str, timeout: int = 20) -> bytes:
    """Run ``text`` through both, each step bounded by ``timeout`` seconds."""
    path, spec = write_spec(tmp_path, text)
    status, reference = target.reference(path, timeout=timeout)
    completed, ours = target.racesim(spec, step_timeout=timeout)
    assert ours == reference
    assert completed == (status == 0)
    return ours


def test_notices_and_notice_markers(target: Target, tmp_path: Path) -> None:
    out = _same(
        target,
        tmp_path,
        """
setup { CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1); }
setup { CREATE FUNCTION note(msg text) RETURNS int LANGUAGE plpgsql AS
  $$ BEGIN RAISE NOTICE 'note: %', msg; RETURN 1; END $$; }
teardown { DROP TABLE t; DROP FUNCTION note(text); }
session s1
setup { BEGIN; }
step s1lock { SELECT note('locking') FROM t FOR UPDATE; }
step s1warn { DO $$ BEGIN RAISE WARNING 'careful' USING DETAIL = 'the detail', HINT = 'a hint'; END $$; }
step s1c { COMMIT; }
session s2
step s2upd { UPDATE t SET id = id WHERE note('updating') = 1; }
step s2sel { SELECT 1 AS one, NULL AS nothing, 'x' AS "Mixed Case", '' AS empty; }
permutation s1lock s2upd(s1c) s1warn s1c s2sel
permutation s1lock s1c(s2upd notices 1) s2upd s1warn s2sel
permutation s1lock s1warn s2upd s1c s2sel(*)
""",
    )
    assert b"s1: NOTICE:  note: locking\n" in out
    assert b"DETAIL:  the detail\n" in out


def test_setup_failure_stops_like_isolationtester(target: Target, tmp_path: Path) -> None:
    out = _same(
        target,
        tmp_path,
        """
setup { CREATE TABLE t (id int); }
setup { SELECT * FROM nowhere; }
teardown { DROP TABLE t; }
session s1
step a { SELECT 1; }
""",
    )
    assert b'setup failed: ERROR:  relation "nowhere" does not exist' in out


def test_session_setup_failure_and_teardown_failure(target15: Target, tmp_path: Path) -> None:
    _same(
        target15,
        tmp_path,
        """
session s1
setup { SELECT 1 AS x; }
step a { SELECT 2 AS y; }
teardown { DROP TABLE nowhere; }
session s2
setup { SELECT * FROM nowhere2; }
step b { SELECT 3; }
""",
    )
    out = _same(
        target15,
        tmp_path,
        """
teardown { DROP TABLE nowhere; }
session s1
step a { SELECT 2 AS y; }
teardown { SELECT 5 AS z; DROP TABLE nowhere3; }
""",
    )
    assert b"teardown of session s1 failed:" in out and b"teardown failed:" in out


def test_a_step_that_runs_too_long_is_canceled(target15: Target, tmp_path: Path) -> None:
    out = _same(
        target15,
        tmp_path,
        """
session s1
step slow { SELECT pg_sleep(10); }
step after { SELECT 1 AS done; }
""",
        timeout=1,
    )
    assert b"isolationtester: canceling step slow after 1 seconds\n" in out


def test_unused_steps_and_quoted_names(target15: Target, tmp_path: Path) -> None:
    out = _same(
        target15,
        tmp_path,
        """
# comment
session "first s"
step "a ""quoted"" step" { SELECT 'a' AS "col""umn"; }  # trailing comment
step unused_one { SELECT 1; }
session s2
step b	{
  SELECT 1
    AS multi_line;
	}
step unused_two { SELECT 2; }
permutation "a ""quoted"" step" b
""",
    )
    assert out.startswith(b"unused step name: unused_one\nunused step name: unused_two\n")


def test_results_errors_and_multiple_statements(target15: Target, tmp_path: Path) -> None:
    _same(
        target15,
        tmp_path,
        """
session s1
step many { SELECT 1 AS a; SELECT 'x' AS b, 2.5e3 AS c, -1 AS d, 'E1' AS e, '1.' AS f; SELECT; }
step empty { }
step none { SELECT 1 WHERE false; }
step err { SELECT 1/0; }
step multibyte { SELECT 'héllo wörld' AS "naïve", 42 AS n; }
""",
    )
