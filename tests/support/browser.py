"""`ob-tuner` in a real browser: the installed console script on a loopback port, and Debian's chromium
driven by Playwright (never a browser Playwright downloads). Shared by `test_browser.py` and
`scripts/screenshot_tuner.py`.

Playwright is imported only when a browser starts, so a machine without it can still collect the tests
and skip them with `unavailable()`'s reason.
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from support.cli import free_port, serving

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Locator, Page

CHROMIUM = Path("/usr/bin/chromium")
# headless in a container (no sandbox, no GPU) and nothing phoning home
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1400, "height": 1000}
SESSION_ID = re.compile(r"\b[0-9A-HJKMNP-TV-Z]{26}\b")  # a ULID
# generous for a loaded 2-core CI machine; a healthy page takes well under a second for each step
LOAD_MS = 20_000
TURN_MS = 30_000


def unavailable() -> str | None:
    """Why no browser can run here, or None."""
    if importlib.util.find_spec("playwright") is None:
        return "the playwright package is missing (it is in the dev extra: pip install -e '.[dev]')"
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (apt-get install chromium; .ci/run installs it)"
    return None


@contextmanager
def tuner(home: Path, *args: str, **settings: str) -> Iterator[str]:
    """`ob-tuner` on a free loopback port, embedded backend without a store file, in a clean environment
    (no OB_* settings but `settings`, no model key): yields its URL; stops it on the way out."""
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(home), "OB_MEMORY_STORE": "none",
           "GRADIO_ANALYTICS_ENABLED": "False", **settings}
    with serving("ob-tuner", "--port", str(free_port()), *args, env=env, log=home / "ob-tuner.log") as url:
        yield url


@contextmanager
def chromium() -> Iterator[Browser]:
    """A headless chromium from /usr/bin."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


class TunerPage:
    """The tuner's page by what a person does on it. `errors` collects uncaught JavaScript errors."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.errors: list[str] = []
        page.on("pageerror", lambda error: self.errors.append(str(error)))

    def open(self, url: str) -> None:
        """Go to the tuner and wait until the editor shows the first profile (the page's load event)."""
        from playwright.sync_api import expect

        self.page.goto(url, wait_until="domcontentloaded")  # not "load": that waits for web fonts
        expect(self.field("model")).not_to_have_value("", timeout=LOAD_MS)

    def field(self, elem_id: str) -> Locator:
        """The text box of the field with `elem_id` (model, system-message, icebreaker, message)."""
        return self.page.locator(f"#{elem_id} textarea")

    def tab(self, name: str) -> None:
        self.page.get_by_role("tab", name=name).click()

    def tools(self) -> Locator:
        """The checkboxes of the tools checklist."""
        return self.page.locator("#tools").get_by_role("checkbox")

    def untick(self, tool: str) -> None:
        """Take `tool` out of the edited profile (the change is not saved)."""
        self.tab("Profile")
        self.page.locator("#tools").get_by_role("checkbox", name=tool).uncheck()

    def send(self, message: str) -> None:
        """Send `message` from the playground to both profiles and wait until the turn is back (the page
        empties the message box when it shows the replies)."""
        from playwright.sync_api import expect

        self.tab("Playground")
        self.field("message").fill(message)
        self.page.locator("#send").click()
        expect(self.field("message")).to_have_value("", timeout=TURN_MS)

    def replies(self, side: str) -> Locator:
        """The assistant's bubbles in the `edited` or `saved` chat pane."""
        return self.page.locator(f"#{side}-chat").get_by_test_id("bot")

    def save(self) -> None:
        self.tab("Profile")
        self.page.locator("#save").click()

    def sessions(self) -> Locator:
        """Refresh the inspector's session list; the rows that name a session (a 26-character ULID)."""
        self.tab("Inspector")
        self.page.get_by_role("button", name="Refresh sessions").click()
        return self.page.get_by_role("row").filter(has_text=SESSION_ID)

    def show(self, row: Locator) -> Locator:
        """Pick a session row, show it; the transcript's chat log."""
        from playwright.sync_api import expect

        row.get_by_role("gridcell").first.click()
        expect(self.page.get_by_label("Session id (click a row)")).not_to_have_value("")
        self.page.get_by_role("button", name="Show", exact=True).click()
        return self.page.get_by_role("log")

