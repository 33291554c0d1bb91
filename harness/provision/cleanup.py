"""Leave nothing behind: signals become exceptions, dead owners' directories are reaped.

Three layers keep a throwaway cluster from outliving racesim:

1. :func:`install_signal_handlers` turns SIGTERM/SIGHUP into exceptions so
   ``with`` blocks unwind (SIGINT already raises ``KeyboardInterrupt``).
2. :func:`start_janitor` starts a tiny ``sh`` that waits on a pipe; if racesim is
   SIGKILLed the pipe closes and the janitor stops the postmaster and removes the
   run directory. (The cluster also asks the kernel for a parent-death signal,
   :func:`parent_death_preexec`.)
3. :func:`reap_stale` runs on every start: each run directory names its owner's pid
   (and holds an ``owner`` file with the pid's start time, against pid reuse); a
   directory whose owner is dead has its postmaster stopped and is removed. A
   directory whose owner is alive is never touched.

Python's default for SIGTERM and SIGHUP is to die on the spot, which would leave a
throwaway cluster running. :func:`install_signal_handlers` makes them raise
``SystemExit(128 + signum)`` instead (SIGINT keeps raising ``KeyboardInterrupt``),
and :func:`shielded` defers such signals while cleanup code runs, so a second
Ctrl-C cannot abort a half-done shutdown.

Example::

    install_signal_handlers()
    with Cluster() as cluster:
        ...  # SIGTERM here stops the cluster and removes its directory
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import IO, Any

from racesim.errors import HarnessError
from racesim.provision import paths

__all__ = [
    "Janitor",
    "install_signal_handlers",
    "owner_alive",
    "parent_death_preexec",
    "proc_start_time",
    "reap_stale",
    "shielded",
    "start_janitor",
    "stop_process",
    "write_owner",
]

OWNER_FILE = "owner"

_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)
_installed = False
_shield_depth = 0
_pending: list[int] = []
_last: int | None = None
_previous_hook = sys.unraisablehook
# How long the thread that raises a signal again waits so the finalizer (or hook)
# can return first.
_RESEND_DELAY = 0.01


def install_signal_handlers() -> None:
    """Make SIGTERM/SIGHUP raise ``SystemExit(128+signum)`` and SIGINT ``KeyboardInterrupt``.

    Call from the main thread; calling again does nothing. Signals the user set a
    handler for (anything but the default or Python's Ctrl-C handler) are left alone.
    """
    global _installed, _previous_hook
    if threading.current_thread() is not threading.main_thread():
        raise HarnessError("install_signal_handlers() must be called from the main thread")
    if _installed:
        return
    for signum in _SIGNALS:
        current = signal.getsignal(signum)
        if current in (signal.SIG_DFL, signal.default_int_handler):
            signal.signal(signum, _handle)
    _previous_hook = sys.unraisablehook
    sys.unraisablehook = _resend
    _installed = True


@contextmanager
def shielded() -> Iterator[None]:
    """Defer the signals handled by :func:`install_signal_handlers` until the block ends.

    Only the first deferred signal is raised afterwards; the rest are dropped
    because the process is already on its way out. Outside the main thread (where
    no handler runs) this is a no-op.
    """
    global _shield_depth
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _shield_depth += 1
    try:
        yield
    finally:
        _shield_depth -= 1
    if _shield_depth == 0 and _pending:
        signum = _pending[0]
        _pending.clear()
        _raise_for(signum)


def _handle(signum: int, frame: FrameType | None) -> None:
    global _last
    _last = signum
    if _shield_depth > 0:
        _pending.append(signum)
        return
    if _inside_hook(frame):
        # Raised here, the exception would escape sys.unraisablehook, where Python
        # prints and drops it. Send the signal again once the hook has returned.
        _send_later(signum)
        return
    _raise_for(signum)


def _resend(unraisable: Any) -> None:
    """Send a signal again when Python dropped its exception.

    A signal that lands while a finalizer runs (a collected connection's
    ``__del__``, a generator closed by the collector) raises there, and Python
    prints and drops the exception, so racesim would run on. Send the same
    signal to the main thread again once the finalizer has returned. Should that
    signal land while this hook still runs (a loaded machine can keep the main
    thread here longer than the delay), :func:`_handle` sees this hook's frame
    and defers once more instead of raising where the exception would be lost.
    """
    exc = unraisable.exc_value
    if isinstance(exc, (SystemExit, KeyboardInterrupt)) and _last is not None:
        _send_later(_last)
        return
    _previous_hook(unraisable)


def _inside_hook(frame: FrameType | None) -> bool:
    """Whether ``frame`` runs inside :func:`_resend` (or something it called)."""
    while frame is not None:
        if frame.f_code is _resend.__code__:
            return True
        frame = frame.f_back
    return False


def _send_later(signum: int) -> None:
    """Send ``signum`` to the main thread again shortly, from a thread of its own.

    Each dropped exception leads to exactly one new sending, so a signal is
    raised once in ordinary code and never twice.
    """
    main = threading.main_thread().ident
    if main is None:
        return
    sender = threading.Thread(target=_send, args=(main, signum), name="racesim-signal", daemon=True)
    with contextlib.suppress(RuntimeError):  # no new threads at interpreter shutdown
        sender.start()


def _send(main: int, signum: int) -> None:
    time.sleep(_RESEND_DELAY)
    with contextlib.suppress(OSError):  # the main thread has already gone
        signal.pthread_kill(main, signum)


def _raise_for(signum: int) -> None:
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise SystemExit(128 + signum)


def proc_start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (clock ticks since boot), or None if unknown."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces; fields after it are clean.
    fields = text.rsplit(")", 1)[-1].split()
    if fields and fields[0] == "Z":
        return "zombie"
    return fields[19] if len(fields) > 19 else None


def write_owner(directory: Path) -> None:
    """Record the current process as the owner of ``directory``."""
    pid = os.getpid()
    with os.fdopen(paths.create_file(directory / OWNER_FILE, 0o644), "w") as f:
        f.write(f"{pid} {proc_start_time(pid) or '-'}\n")


def owner_alive(directory: Path) -> bool:
    """Whether the process that created ``directory`` (``<prefix>-<pid>-<random>``) lives."""
    try:
        pid = int(directory.name.split("-")[-2])
    except (ValueError, IndexError):
        return True  # not ours to judge
    started: str | None = None
    with contextlib.suppress(OSError, ValueError):
        owner_pid, started = (directory / OWNER_FILE).read_text().split()
        if int(owner_pid) != pid:
            return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, another user's
    now = proc_start_time(pid)
    if now == "zombie":
        return False
    # A different start time means the pid was reused by an unrelated process.
    return not (started not in (None, "-") and now is not None and now != started)


def stop_process(pid: int, *, must_mention: str | None = None, timeout: float = 5.0) -> None:
    """SIGQUIT ``pid`` (a postmaster: immediate shutdown), wait, then SIGKILL.

    With ``must_mention``, the process is signalled only if its command line
    contains that text, so a recycled pid is left alone.
    """
    if must_mention is not None:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            return
        if must_mention.encode() not in cmdline:
            return
    for sig in (signal.SIGQUIT, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc_start_time(pid) in (None, "zombie"):
                return
            time.sleep(0.005)


def reap_stale(root: Path, prefix: str) -> list[Path]:
    """Remove ``root/<prefix>-<pid>-*`` directories whose owner is dead; return them.

    A postmaster still running in ``<dir>/data`` (or ``<dir>/*``) is stopped
    first. Only real directories owned by us are considered: a link or another
    user's directory planted under the name is left alone.
    """
    reaped: list[Path] = []
    try:
        candidates = [p for p in root.iterdir() if p.name.startswith(prefix + "-")]
    except OSError:
        return reaped
    for directory in candidates:
        if not _ours(directory) or owner_alive(directory):
            continue
        # data/ in a cluster's run dir; <name>/data/ in a benchmark's scratch dir.
        pidfiles = [*directory.glob("*/postmaster.pid"), *directory.glob("*/*/postmaster.pid")]
        for pidfile in pidfiles:
            with contextlib.suppress(OSError, ValueError, IndexError):
                pid = int(pidfile.read_text().split()[0])
                stop_process(pid, must_mention=str(pidfile.parent))
        shutil.rmtree(directory, ignore_errors=True)
        if not directory.exists():
            reaped.append(directory)
    return reaped


def _ours(path: Path) -> bool:
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid()


# The janitor reads postmaster pids (a new one after each restart), then waits:
# "done" means racesim cleaned up itself; end-of-file means racesim died, so stop
# the last postmaster and remove the dir.
_JANITOR = """
pid=none
while read -r word; do
  [ "$word" = done ] && exit 0
  pid=$word
done
if [ "$pid" != none ]; then
  kill -QUIT "$pid" 2>/dev/null
  i=0
  # postmaster.pid goes as the postmaster exits; kill -0 alone would also wait
  # until a (possibly slow) init reaps the zombie.
  while kill -0 "$pid" 2>/dev/null && [ -e "$1/data/postmaster.pid" ] && [ $i -lt 500 ]; do
    sleep 0.01; i=$((i+1))
  done
  kill -KILL "$pid" 2>/dev/null
fi
rm -rf -- "$1"
"""


class Janitor:
    """Handle on a janitor process; see :func:`start_janitor`."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self._proc = proc
        self._pipe: IO[bytes] | None = proc.stdin

    def watch(self, pid: int | None) -> None:
        """Tell the janitor which postmaster to stop should racesim die."""
        self._send(f"{pid if pid is not None else 'none'}\n")

    def release(self) -> None:
        """racesim cleaned up itself: let the janitor exit without doing anything."""
        self._send("done\n")
        if self._pipe is not None:
            with contextlib.suppress(OSError):
                self._pipe.close()
            self._pipe = None
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()

    def _send(self, text: str) -> None:
        if self._pipe is None:
            return
        with contextlib.suppress(OSError):
            self._pipe.write(text.encode())
            self._pipe.flush()


def start_janitor(directory: Path) -> Janitor | None:
    """Start a janitor for ``directory``; None if no ``sh`` is available."""
    sh = shutil.which("sh")
    if sh is None:
        return None
    proc = subprocess.Popen(
        [sh, "-c", _JANITOR, "racesim-janitor", str(directory)],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        # Own session: a Ctrl-C or hangup aimed at racesim must not kill the janitor.
        start_new_session=True,
        cwd="/",
    )
    return Janitor(proc)


_PR_SET_PDEATHSIG = 1


def parent_death_preexec() -> Callable[[], None] | None:
    """A preexec_fn asking the kernel to SIGQUIT the postmaster when racesim dies.

    The signal fires when the *thread* that forked exits, so it is used only from the
    main thread. CPython runs preexec_fn after the uid switch, which matters:
    changing credentials clears the setting.
    """
    if not sys.platform.startswith("linux"):
        return None
    if threading.current_thread() is not threading.main_thread():
        return None
    import ctypes  # only for starting a cluster: not loaded when connecting elsewhere

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGQUIT), 0, 0, 0)
        if os.getppid() != parent:  # racesim died before prctl took effect
            os._exit(1)

    return preexec
