"""Headless Chromium for the HTML report tests: Debian's ``chromium`` package only.

``chromium()`` finds the browser, installs the package with apt when the tests run
as root on a Debian-like machine and it is missing, or skips the test with the
reason. Each call of ``dump_dom`` / ``screenshot`` starts a fresh browser with a
profile of its own and no network access of its own (no updates, no sync).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import shutil
import subprocess
import time
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--hide-scrollbars",
)
INSTALL_LOCK = Path("/tmp/racesim-chromium-install.lock")


def chromium() -> str:
    """The path of the system's chromium, installing it with apt if need be."""
    found = shutil.which("chromium")
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip("no chromium: install Debian's chromium package (apt-get install chromium)")
    with INSTALL_LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one install at a time across xdist workers
        if not shutil.which("chromium"):
            done = subprocess.run(
                ["sh", "-c", "apt-get update -qq && apt-get install -y -qq chromium"],
                capture_output=True,
                text=True,
                timeout=900,
                check=False,
                env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
            )
            if done.returncode != 0:
                tail = (done.stderr or done.stdout).strip().splitlines()[-1:]
                pytest.skip(f"no chromium: apt-get install chromium failed: {' '.join(tail)}")
    found = shutil.which("chromium")
    if not found:
        pytest.skip("no chromium: the chromium package installed no chromium command")
    return found


def _run(page: Path, profile: Path, *extra: str) -> str:
    done = subprocess.run(
        [chromium(), *FLAGS, f"--user-data-dir={profile}", *extra, page.resolve().as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def dump_dom(page: Path, profile: Path) -> str:
    """The page's DOM after its scripts ran, as HTML."""
    return _run(page, profile, "--virtual-time-budget=5000", "--dump-dom")


def screenshot(page: Path, profile: Path, png: Path, size: str = "1500,900") -> Path:
    """A PNG of the page as a window of ``size`` shows it."""
    _run(page, profile, f"--window-size={size}", f"--screenshot={png}")
    return png


def print_pdf(page: Path, profile: Path, pdf: Path) -> Path:
    """The page printed to PDF, as the print dialog would (print stylesheet, no headers)."""
    _run(page, profile, "--no-pdf-header-footer", f"--print-to-pdf={pdf}")
    return pdf


class Element:
    def __init__(self, tag: str, attrs: dict[str, str]) -> None:
        self.tag = tag
        self.attrs = attrs
        self.text = ""

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())


class DOM(HTMLParser):
    """Every element of a dumped page, with the text inside it."""

    VOID = frozenset({"meta", "br", "input", "img", "link", "hr", "col", "area", "base", "wbr"})

    def __init__(self, text: str) -> None:
        super().__init__()
        self.elements: list[Element] = []
        self._open: list[Element] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        e = Element(tag, {k: v or "" for k, v in attrs})
        self.elements.append(e)
        if tag not in self.VOID:
            self._open.append(e)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append(Element(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self._open) - 1, -1, -1):
            if self._open[i].tag == tag:
                del self._open[i:]
                return

    def handle_data(self, data: str) -> None:
        for e in self._open:
            e.text += data

    def having(self, cls: str, tag: str | None = None) -> list[Element]:
        return [e for e in self.elements if cls in e.classes and (tag is None or e.tag == tag)]


class DevTools:
    """The page in a headless Chromium, driven over the DevTools protocol on a pipe.

    ``--remote-debugging-pipe`` has Chromium read commands on its fd 3 and answer
    on fd 4, as NUL-terminated JSON: no port, no websocket, nothing but the stdlib.
    """

    def __init__(self, page: Path, profile: Path, timeout: float = 60.0) -> None:
        to_browser = os.pipe()
        from_browser = os.pipe()
        # Chromium's ends, moved above 9 so that bash can put them on fds 3 and 4
        # (and close these) without clobbering one with the other.
        theirs = tuple(
            fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (to_browser[0], from_browser[1])
        )
        os.close(to_browser[0])
        os.close(from_browser[1])
        r, w = theirs
        wire = f'exec "$0" "$@" 3<&{r} 4>&{w} {r}<&- {w}>&-'
        argv = [*FLAGS, f"--user-data-dir={profile}", "--remote-debugging-pipe"]
        self.proc = subprocess.Popen(
            [
                "bash",
                "-c",
                wire,
                chromium(),
                *argv,
                "--window-size=1500,900",
                page.resolve().as_uri(),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=theirs,
        )
        for fd in theirs:
            os.close(fd)
        self._out, self._in = to_browser[1], from_browser[0]
        self._buffer = b""
        self._id = 0
        self.timeout = timeout
        self.session = ""
        deadline = time.monotonic() + timeout
        while not self.session:
            pages = [
                t for t in self.send("Target.getTargets")["targetInfos"] if t["type"] == "page"
            ]
            if pages:
                attached = self.send(
                    "Target.attachToTarget", targetId=pages[0]["targetId"], flatten=True
                )
                self.session = attached["sessionId"]
            elif time.monotonic() > deadline:
                raise AssertionError("chromium opened no page")
            else:
                time.sleep(0.05)

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one command; its result (or AssertionError with the protocol's error)."""
        self._id += 1
        message: dict[str, Any] = {"id": self._id, "method": method, "params": params}
        if self.session:
            message["sessionId"] = self.session
        os.write(self._out, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            while b"\0" not in self._buffer:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([self._in], [], [], left)[0]:
                    raise AssertionError(f"chromium did not answer {method}")
                chunk = os.read(self._in, 1 << 16)
                if not chunk:
                    raise AssertionError(f"chromium closed the pipe during {method}")
                self._buffer += chunk
            raw, self._buffer = self._buffer.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise AssertionError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply.get("result", {})
                return result

    def js(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page."""
        done = self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in done:
            raise AssertionError(f"{expression}: {done['exceptionDetails']}")
        return done["result"].get("value")

    def wait_for(self, expression: str) -> None:
        deadline = time.monotonic() + self.timeout
        while not self.js(expression):
            if time.monotonic() > deadline:
                raise AssertionError(f"never true in the page: {expression}")
            time.sleep(0.05)

    def click(self, selector: str) -> None:
        """A click on the first element matching ``selector`` (SVG elements too)."""
        found = self.js(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
            " if (!e) return false;"
            " e.dispatchEvent(new MouseEvent('click', {bubbles: true})); return true; })()"
        )
        assert found, f"nothing matches {selector}"

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._out)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        os.close(self._in)

    def __enter__(self) -> DevTools:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
