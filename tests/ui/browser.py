"""A headless Chromium driven over the DevTools protocol, to look at the UIs as a person would.

Debian's chromium is started with --headless --no-sandbox --disable-gpu
--disable-background-networking and a remote-debugging port; pages are loaded in real time
(single-page apps such as the Prefect and MLflow UIs render after their API calls return), then
read (`text`, `count`) and photographed (`screenshot`). Only the standard library and the
`websockets` client are used: no browser download, no extra driver.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


class BrowserError(RuntimeError):
    """Chromium is missing, did not start, or a page did not load."""


def chromium_path() -> str:
    """Path of the chromium binary; BrowserError says how to install it when missing."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        raise BrowserError(
            "chromium is not installed: `make setup` installs Debian's chromium package "
            "(apt-get install chromium)"
        )
    return found


class Browser:
    """One headless Chromium with one tab. Use as a context manager."""

    def __init__(self, width: int = 1400, height: int = 1000, timeout: float = 60) -> None:
        self.width, self.height, self.timeout = width, height, timeout
        self._profile: Path | None = None
        self._proc: subprocess.Popen | None = None
        self._ws = None
        self._next_id = 0

    def __enter__(self) -> Browser:
        try:
            self._start()
        except BaseException:
            self.__exit__(None, None, None)  # no chromium left behind when starting fails
            raise
        return self

    def _start(self) -> None:
        from websockets.sync.client import connect

        binary = chromium_path()
        self._profile = Path(tempfile.mkdtemp(prefix="modelwatch-chromium-"))
        self._proc = subprocess.Popen(
            [
                binary,
                *FLAGS,
                f"--window-size={self.width},{self.height}",
                "--remote-debugging-port=0",
                f"--user-data-dir={self._profile}",
                "--no-first-run",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port = self._devtools_port()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as resp:
            pages = [t for t in json.loads(resp.read()) if t.get("type") == "page"]
        if not pages:
            raise BrowserError("chromium started without a page")
        self._ws = connect(pages[0]["webSocketDebuggerUrl"], max_size=None, open_timeout=10)
        self.send("Page.enable")
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": self.width, "height": self.height, "deviceScaleFactor": 1, "mobile": False},
        )

    def __exit__(self, *exc: object) -> None:
        try:
            if self._ws is not None:
                self._ws.close()
        except Exception:  # noqa: BLE001 - the browser goes away below in any case
            pass
        finally:
            self._ws = None
            if self._proc is not None:
                self._proc.terminate()
                try:
                    self._proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait(timeout=10)
                self._proc = None
            if self._profile is not None:
                shutil.rmtree(self._profile, ignore_errors=True)

    def _devtools_port(self) -> int:
        marker = self._profile / "DevToolsActivePort"
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise BrowserError(f"chromium exited with code {self._proc.returncode}")
            lines = marker.read_text().split() if marker.exists() else []
            if len(lines) >= 2:  # port and browser path: the file is complete
                return int(lines[0])
            time.sleep(0.1)
        raise BrowserError(f"chromium did not open a debugging port in {self.timeout:.0f} s")

    def send(self, method: str, params: dict | None = None) -> dict:
        """Sends one DevTools command and returns its result (events in between are skipped)."""
        self._next_id += 1
        msg_id = self._next_id
        from websockets.exceptions import ConnectionClosed

        deadline = time.monotonic() + self.timeout
        try:
            self._ws.send(json.dumps({"id": msg_id, "method": method, "params": params or {}}))
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError
                reply = json.loads(self._ws.recv(timeout=left))
                if reply.get("id") == msg_id:
                    break
        except TimeoutError:
            raise BrowserError(f"no answer to {method} in {self.timeout:.0f} s") from None
        except ConnectionClosed as exc:
            raise BrowserError(f"{method}: the connection to chromium closed ({exc})") from None
        if "error" in reply:
            raise BrowserError(f"{method}: {reply['error'].get('message')}")
        return reply.get("result", {})

    def open(self, url: str) -> None:
        """Loads url as a new document (through about:blank, so that a single-page app's routes
        that differ only after '#' are loaded afresh and no text of the page before lingers), and
        waits for it to load; the app then still fetches its data: wait with `wait_for`."""
        for target in ("about:blank", url):
            result = self.send("Page.navigate", {"url": target})
            if result.get("errorText"):
                raise BrowserError(f"{target}: {result['errorText']}")
            deadline = time.monotonic() + self.timeout
            while True:
                try:
                    state = self.evaluate("[document.readyState, location.href]")
                except BrowserError:  # the old document is going away
                    state = None
                # the app may rewrite its address (redirects, query strings): only the blank
                # page's is compared
                blank = state is not None and state[1] == "about:blank"
                if state and state[0] == "complete" and blank == (target == "about:blank"):
                    break
                if time.monotonic() >= deadline:
                    raise BrowserError(f"{target} did not load in {self.timeout:.0f} s")
                time.sleep(0.2)

    def evaluate(self, expression: str):
        """Value of a JavaScript expression in the page (JSON-serialisable values only)."""
        result = self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression}: {result['exceptionDetails'].get('text')}")
        return result.get("result", {}).get("value")

    def text(self) -> str:
        """The page's visible text."""
        return self.evaluate("document.body ? document.body.innerText : ''") or ""

    def count(self, selector: str) -> int:
        """How many elements match a CSS selector."""
        return int(self.evaluate(f"document.querySelectorAll({json.dumps(selector)}).length"))

    def click(self, text: str, selector: str = "button, a, [role=tab], li") -> bool:
        """Clicks the innermost element matching selector whose visible text is exactly text
        (a tab, a button, a link); False when there is none."""
        script = f"""(() => {{
            const hits = [...document.querySelectorAll({json.dumps(selector)})]
                .filter(e => e.innerText && e.innerText.trim() === {json.dumps(text)});
            if (!hits.length) return false;
            hits[hits.length - 1].click();
            return true;
        }})()"""
        return bool(self.evaluate(script))

    def wait_for(
        self,
        texts: tuple[str, ...] = (),
        selector: str | None = None,
        timeout: float = 60,
        settle: float = 1.5,
    ) -> bool:
        """Waits until every text is on the page and the selector (if any) matches, then lets
        the page settle (charts finish drawing) and returns True; False after timeout seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                body = self.text()
                found = all(t in body for t in texts) and (
                    selector is None or self.count(selector) > 0
                )
            except BrowserError:  # between two documents: look again
                found = False
            if found:
                time.sleep(settle)
                return True
            time.sleep(0.5)
        return False

    def screenshot(self, out: Path) -> Path:
        """Writes a PNG of the visible page to out."""
        for attempt in range(5):
            try:
                data = self.send("Page.captureScreenshot", {"format": "png"})["data"]
                break
            except BrowserError:  # between two documents (a navigation just started)
                if attempt == 4:
                    raise
                time.sleep(1)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(base64.b64decode(data))
        return out
