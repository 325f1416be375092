"""Headless Chromium driven over the Chrome DevTools Protocol, for the Temporal UI test.

The UI is a single-page app that loads its data after the page itself, so a test needs
to wait until the text it expects appears, then take a screenshot. That is four DevTools
commands (``Target.createTarget``, ``Page.navigate``, ``Runtime.evaluate``,
``Page.captureScreenshot``) over one websocket; ``websocket-client`` speaks the websocket
(it is already installed as a dependency of ``kubernetes`` and declared in the dev extra
because this module imports it directly).
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import websocket

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1600,1000",
    "--remote-debugging-port=0",
)


_PAGE_TEXT = """
[document.body ? document.body.innerText : '',
 ...[...document.querySelectorAll('iframe')].map(frame => {
   try { return frame.contentDocument ? frame.contentDocument.body.innerText : ''; }
   catch (error) { return ''; }
 })].join('\\n')
"""


class BrowserError(RuntimeError):
    """Chromium did not start, or a DevTools command failed."""


def find_chromium() -> str | None:
    for candidate in CHROMIUM_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    return None


class Browser:
    """One headless Chromium with a fresh profile and one page, closed by ``close``."""

    def __init__(
        self,
        executable: str,
        profile: Path,
        *,
        timeout_s: float = 30.0,
        evidence_dir: Path | None = None,
    ) -> None:
        """``evidence_dir`` receives the page's text and a screenshot when a wait fails."""
        self._timeout_s = timeout_s
        self._ids = itertools.count(1)
        self._evidence_dir = evidence_dir
        profile.mkdir(parents=True, exist_ok=True)
        self._log = (profile / "chromium.log").open("wb")
        self._process = subprocess.Popen(
            [executable, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._log_path = profile / "chromium.log"
        # Chromium writes the port it chose and the browser target's path to this file.
        active = profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout_s
        while not (active.exists() and len(active.read_text().splitlines()) >= 2):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise BrowserError(f"chromium did not start:\n{self.log()[-2000:]}")
            time.sleep(0.1)
        port, path = active.read_text().splitlines()[:2]
        self._socket = websocket.create_connection(
            f"ws://127.0.0.1:{port}{path}", timeout=timeout_s, suppress_origin=True
        )
        target = self._command("Target.createTarget", {"url": "about:blank"})
        attached = self._command(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
        )
        self._session = str(attached["sessionId"])
        self.page("Page.enable")
        self.page("Runtime.enable")

    def log(self) -> str:
        return self._log_path.read_text(errors="replace") if self._log_path.exists() else ""

    def _command(
        self, method: str, params: dict[str, Any] | None = None, session: str | None = None
    ) -> dict[str, Any]:
        message: dict[str, Any] = {"id": next(self._ids), "method": method}
        message["params"] = params or {}
        if session:
            message["sessionId"] = session
        self._socket.send(json.dumps(message))
        deadline = time.monotonic() + self._timeout_s
        while time.monotonic() < deadline:
            reply = json.loads(self._socket.recv())
            if reply.get("id") != message["id"]:
                continue  # an event, or a reply to nothing we wait for
            if "error" in reply:
                raise BrowserError(f"{method} failed: {reply['error']}")
            result: dict[str, Any] = reply.get("result", {})
            return result
        raise BrowserError(f"{method}: no reply within {self._timeout_s:.0f}s")

    def page(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """A DevTools command to the page."""
        return self._command(method, params, self._session)

    def navigate(self, url: str) -> None:
        result = self.page("Page.navigate", {"url": url})
        if result.get("errorText"):
            raise BrowserError(f"navigating to {url}: {result['errorText']}")

    def evaluate(self, expression: str) -> Any:
        result = self.page("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression!r} raised: {result['exceptionDetails']}")
        return result.get("result", {}).get("value")

    def text(self) -> str:
        """What a person reads on the page now: the body's ``innerText``, then that of each
        same-origin iframe (the Temporal UI renders summaries and details in iframes)."""
        value = self.evaluate(_PAGE_TEXT)
        return str(value or "")

    def wait_for_text(self, *wanted: str, timeout_s: float = 30.0) -> str:
        """Poll the page's text until every ``wanted`` string shows; return that text."""
        deadline = time.monotonic() + timeout_s
        text = ""
        while time.monotonic() < deadline:
            text = self.text()
            if all(w in text for w in wanted):
                return text
            time.sleep(0.3)
        missing = [w for w in wanted if w not in text]
        if self._evidence_dir is not None:
            (self._evidence_dir / "ui-page-when-wait-failed.txt").write_text(text)
            self.screenshot(self._evidence_dir / "ui-page-when-wait-failed.png")
        raise AssertionError(f"the page never showed {missing}; it shows:\n{text[:3000]}")

    def screenshot(self, path: Path) -> Path:
        shot = self.page("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def close(self) -> None:
        socket = getattr(self, "_socket", None)
        if socket is not None:
            socket.close()
        if self._process.poll() is None:
            os.killpg(self._process.pid, signal.SIGTERM)
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self._process.pid, signal.SIGKILL)
                self._process.wait(10)
        self._log.close()

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
