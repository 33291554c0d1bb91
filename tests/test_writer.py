"""Saved scenario files: atomic, and never written through a planted link."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from racesim.formats.writer import save

IS_ROOT = os.geteuid() == 0


def _other_user() -> pwd.struct_passwd | None:
    if not IS_ROOT:
        return None
    try:
        return pwd.getpwnam("nobody")
    except KeyError:
        return None


def _as_other(user: pwd.struct_passwd | None, *argv: str) -> None:
    """Run ``argv`` as ``user`` (as ourselves when not root)."""
    kwargs = {} if user is None else {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
    subprocess.run(argv, check=True, **kwargs)  # type: ignore[call-overload]


@pytest.fixture
def hostile() -> Iterator[tuple[Path, Path, pwd.struct_passwd | None]]:
    """A folder another user owns and writes, and a victim file outside it."""
    user = _other_user()
    root = Path(tempfile.mkdtemp(prefix="racesim-test-writer-"))
    root.chmod(0o755)  # the other user must reach its folder
    folder = root / "theirs"
    folder.mkdir()
    if user is not None:
        os.chown(folder, user.pw_uid, user.pw_gid)
    victim = root / "victim"
    victim.write_text("precious\n")
    yield folder, victim, user
    shutil.rmtree(root)


def test_save_writes_atomically_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "found.toml"
    assert save("one\n", target) == target
    save("two\n", target)
    assert target.read_text() == "two\n"
    assert [p.name for p in target.parent.iterdir()] == ["found.toml"]


def test_a_planted_temporary_link_is_never_followed(
    hostile: tuple[Path, Path, pwd.struct_passwd | None],
) -> None:
    folder, victim, user = hostile
    # The old name of the temporary file, and a few neighbours, all linked to the victim.
    for pid in range(os.getpid() - 2, os.getpid() + 3):
        _as_other(user, "ln", "-s", str(victim), str(folder / f".found.toml.{pid}.tmp"))
    save("saved\n", folder / "found.toml")
    assert victim.read_text() == "precious\n"
    assert (folder / "found.toml").read_text() == "saved\n"
    assert not (folder / "found.toml").is_symlink()


def test_a_planted_link_at_the_target_is_replaced_not_followed(
    hostile: tuple[Path, Path, pwd.struct_passwd | None],
) -> None:
    folder, victim, user = hostile
    _as_other(user, "ln", "-s", str(victim), str(folder / "found.toml"))
    save("saved\n", folder / "found.toml")
    assert victim.read_text() == "precious\n"
    assert not (folder / "found.toml").is_symlink()
    assert (folder / "found.toml").read_text() == "saved\n"
