"""racesim installed from a wheel into a virtual environment of its own, as a user has it.

The wheel is built from a copy of this source tree (so the checkout gains no
``build/`` folder), installed without its dependencies, and the environment
borrows the test environment's packages (psycopg, pytest, Hypothesis) through a
``.pth`` line. That line adds the folder to ``sys.path`` without running the
``.pth`` files in it, so the checkout's editable install stays out of reach: what
the environment imports as ``racesim`` is the wheel.
"""

from __future__ import annotations

import shutil
import site
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_SKIP = shutil.ignore_patterns(".venv", ".cache", ".git", "build", "*.egg-info", "__pycache__")


@dataclass(frozen=True)
class Installed:
    python: Path
    racesim: Path
    site_packages: Path

    def run(self, *args: str, cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(a) for a in args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={"PATH": f"{self.python.parent}:/usr/bin:/bin", "HOME": str(cwd), "CI": "true"},
        )


def install(where: Path) -> Installed:
    source = where / "source"
    shutil.copytree(ROOT, source, ignore=_SKIP)
    dist = where / "dist"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", dist, source],
        check=True,
        capture_output=True,
    )
    venv = where / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    python = venv / "bin" / "python"
    purelib = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    borrowed = [*site.getsitepackages(), sysconfig.get_paths()["purelib"]]
    (purelib / "_borrowed.pth").write_text("\n".join(dict.fromkeys(borrowed)) + "\n")
    (wheel,) = dist.glob("racesim-*.whl")
    subprocess.run(
        [*pip, "--python", python, "install", "--no-deps", "--no-index", wheel],
        check=True,
        capture_output=True,
    )
    return Installed(python, venv / "bin" / "racesim", purelib)
