"""A headless Chromium driven by Playwright, to look at the UIs as a person would.

Playwright (its Python package, dev dependency) drives Debian's chromium (`executable_path`),
so nothing is downloaded: `playwright install` is never needed. Chromium starts with
--no-sandbox --disable-gpu and the background-networking switches off (this machine has no
internet; without them Chromium retries Google's hosts at every start). Pages are loaded,
waited on with Playwright's own waiting (`wait_for_function`, actionable clicks), read
(`text`, `count`) and photographed (`screenshot`).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


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
    """One headless Chromium with one page. Use as a context manager.

    `http_credentials` ({"username", "password", "origin"}) answers HTTP basic-auth challenges
    of that origin (MLflow's basic-auth app), as a person typing them into the browser's dialog.
    """

    def __init__(
        self,
        width: int = 1400,
        height: int = 1000,
        timeout: float = 60,
        http_credentials: dict[str, str] | None = None,
    ) -> None:
        self.width, self.height, self.timeout = width, height, timeout
        self.http_credentials = http_credentials
        self._playwright = None
        self._browser = None
        self.page = None

    def __enter__(self) -> Browser:
        from playwright.sync_api import Error, sync_playwright

        binary = chromium_path()
        self._playwright = sync_playwright().start()
        try:
            self._browser = self._playwright.chromium.launch(
                executable_path=binary, headless=True, args=FLAGS, timeout=self.timeout * 1000
            )
        except Error as exc:
            self._playwright.stop()
            raise BrowserError(f"{binary} did not start: {exc}") from exc
        self.page = self._browser.new_page(
            viewport={"width": self.width, "height": self.height},
            http_credentials=self.http_credentials,
        )
        self.page.set_default_timeout(self.timeout * 1000)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._browser is not None:
            self._browser.close()
        if self._playwright is not None:
            self._playwright.stop()

    def open(self, url: str) -> None:
        """Loads url as a new document (through about:blank, so that a single-page app's routes
        that differ only after '#' are loaded afresh and no text of the page before lingers), and
        waits for its load event; the app then still fetches its data: wait with `wait_for`."""
        from playwright.sync_api import Error

        try:
            self.page.goto("about:blank")
            self.page.goto(url, wait_until="load")
        except Error as exc:
            raise BrowserError(f"{url}: {exc}") from exc

    def evaluate(self, expression: str):
        """Value of a JavaScript expression in the page (JSON-serialisable values only)."""
        from playwright.sync_api import Error

        try:
            return self.page.evaluate(expression)
        except Error as exc:
            raise BrowserError(f"{expression}: {exc}") from exc

    def text(self) -> str:
        """The page's visible text."""
        return self.evaluate("document.body ? document.body.innerText : ''") or ""

    def count(self, selector: str) -> int:
        """How many elements match a CSS selector."""
        return self.page.locator(selector).count()

    def click(self, text: str, selector: str = "button, a, [role=tab], li") -> bool:
        """Clicks the innermost element matching selector whose visible text is exactly text
        (a tab, a button, a link); False when there is none."""
        from playwright.sync_api import Error

        exact = re.compile(rf"^\s*{re.escape(text)}\s*$")
        hits = self.page.locator(selector).filter(has_text=exact)
        if hits.count() == 0:
            return False
        try:
            hits.last.click()
        except Error:
            return False
        return True

    def submit_password(self, text: str) -> bool:
        """Types text into the page's password field and submits its form (a login page);
        False when the page has no password field."""
        from playwright.sync_api import Error

        field = self.page.locator("input[type=password]")
        try:
            field.wait_for(timeout=self.timeout * 1000)
            field.fill(text)
            field.press("Enter")
        except Error:
            return False
        return True

    def wait_for(
        self,
        texts: tuple[str, ...] = (),
        selector: str | None = None,
        timeout: float = 60,
        settle: float = 1.5,
    ) -> bool:
        """Waits until every text is on the page and the selector (if any) matches, then lets
        the page settle (charts finish drawing) and returns True; False after timeout seconds."""
        from playwright.sync_api import Error

        script = """([texts, selector]) => {
            const body = document.body ? document.body.innerText : "";
            return texts.every(t => body.includes(t))
                && (selector === null || document.querySelector(selector) !== null);
        }"""
        try:
            self.page.wait_for_function(script, arg=[list(texts), selector], timeout=timeout * 1000)
        except Error:  # timed out (or the page went away for good)
            return False
        self.page.wait_for_timeout(settle * 1000)
        return True

    def screenshot(self, out: Path) -> Path:
        """Writes a PNG of the visible page to out."""
        out.parent.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(out))
        return out
