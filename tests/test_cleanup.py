"""Signals become exceptions that unwind racesim, even when they land in a finalizer."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest

# A signal that arrives while a finalizer runs (psycopg closes collected
# connections in __del__) raises inside __del__, where Python prints and drops
# the exception: without a second raise, racesim would run on to the end.
CHILD = textwrap.dedent(
    """
    import os, signal, sys, time
    from racesim.provision.cleanup import install_signal_handlers

    class Collected:
        def __del__(self):
            os.kill(os.getpid(), int(sys.argv[1]))
            time.sleep(0.05)  # the handler runs here, inside __del__

    def program():
        try:
            yield 1
        finally:  # run when the collector closes the dropped generator
            os.kill(os.getpid(), int(sys.argv[1]))
            time.sleep(0.05)

    signal.signal(signal.SIGHUP, signal.SIG_DFL)  # as from a terminal, not under nohup
    install_signal_handlers()
    try:
        if sys.argv[2] == "del":
            Collected()
        else:
            next(program())
        time.sleep(10)
    except KeyboardInterrupt:
        sys.exit(130)
    print("ran on", flush=True)
    """
)


@pytest.mark.parametrize("where", ["del", "generator"])
@pytest.mark.parametrize(
    ("signum", "status"), [(signal.SIGTERM, 128 + 15), (signal.SIGINT, 130), (signal.SIGHUP, 129)]
)
def test_a_signal_inside_a_finalizer_still_stops_racesim(
    signum: signal.Signals, status: int, where: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(int(signum)), where],
        capture_output=True,
        text=True,
        timeout=8,
    )
    assert "ran on" not in done.stdout
    assert done.returncode == status, done.stderr
    assert "Exception ignored" not in done.stderr


# The same signal can land while sys.unraisablehook itself runs: a redelivery on a
# machine so loaded that the main thread has not yet left racesim's hook, or a
# signal during the hook racesim passes other exceptions on to. Raised there, the
# exception would escape the hook, where Python prints and drops it.
IN_HOOK_CHILD = textwrap.dedent(
    """
    import os, signal, sys, time

    def earlier_hook(unraisable):  # the hook racesim chains to
        os.kill(os.getpid(), int(sys.argv[1]))
        time.sleep(0.05)  # the handler runs here, inside the hook

    sys.unraisablehook = earlier_hook
    from racesim.provision.cleanup import install_signal_handlers

    class Broken:
        def __del__(self):
            raise ValueError("a finalizer that fails")

    signal.signal(signal.SIGHUP, signal.SIG_DFL)  # as from a terminal, not under nohup
    install_signal_handlers()
    try:
        Broken()
        time.sleep(10)
    except KeyboardInterrupt:
        sys.exit(130)
    print("ran on", flush=True)
    """
)


@pytest.mark.parametrize(
    ("signum", "status"), [(signal.SIGTERM, 128 + 15), (signal.SIGINT, 130), (signal.SIGHUP, 129)]
)
def test_a_signal_inside_the_unraisable_hook_still_stops_racesim(
    signum: signal.Signals, status: int
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", IN_HOOK_CHILD, str(int(signum))],
        capture_output=True,
        text=True,
        timeout=8,
    )
    assert "ran on" not in done.stdout
    assert done.returncode == status, done.stderr
    assert "Exception ignored" not in done.stderr


NOHUP_CHILD = textwrap.dedent(
    """
    import os, signal, time
    from racesim.provision.cleanup import install_signal_handlers

    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # started under nohup
    install_signal_handlers()
    os.kill(os.getpid(), signal.SIGHUP)
    time.sleep(0.05)
    print("ran on", flush=True)
    """
)


def test_a_hangup_ignored_at_start_stays_ignored() -> None:
    # nohup racesim ...: the user asked for hangups to be ignored, and racesim keeps it so.
    done = subprocess.run(
        [sys.executable, "-c", NOHUP_CHILD], capture_output=True, text=True, timeout=8
    )
    assert done.returncode == 0, done.stderr
    assert "ran on" in done.stdout
