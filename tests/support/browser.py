"""`ob-tuner` and `ob-serve`'s widget demo in a real browser: the installed console scripts on a loopback port,
and Debian's chromium driven by Playwright (never a browser Playwright downloads). Shared by the tuner's and the
widget's browser tests and `scripts/screenshot_tuner.py`.

What goes wrong is collected, not just what a test looks for: `watch_errors(page)` gathers uncaught JavaScript
errors and console errors (a Content-Security-Policy violation is one); `TunerPage.errors` adds every gradio
error toast and every component gradio marks "Error" (the tuner shows its messages in the page, never so);
`tuner()` and `ob_serve()` fail when the server's output holds a traceback.

Playwright is imported only when a browser starts, so a machine without it can still collect the tests
and skip them with `unavailable()`'s reason.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openbrain.tuner.ui import ANSWERING
from support.cli import free_port, serving, wait_for

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


def screenshot_path(argv: list[str], script: str, image: str) -> Path | None:
    """Where a screenshot script (scripts/screenshot_*.py) writes: `argv[0]`, else docs/images/`image` (its folder
    made); None, with the reason on stderr, where no browser can run."""
    reason = unavailable()
    if reason:
        print(f"{script}: {reason}", file=sys.stderr)
        return None
    out = Path(argv[0]) if argv else Path(__file__).resolve().parents[2] / "docs" / "images" / image
    out.parent.mkdir(parents=True, exist_ok=True)
    return out


@contextmanager
def tuner(home: Path, *args: str, **settings: str) -> Iterator[str]:
    """`ob-tuner` on a free loopback port, embedded backend without a store file, in a clean environment
    (no OB_* settings but `settings`, no model key; PYTHONPATH kept, so a worktree's code runs): yields its
    URL; stops it on the way out, and then fails if its output holds a traceback."""
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": os.environ.get("PYTHONPATH", ""), "HOME": str(home),
           "OB_MEMORY_STORE": "none", "GRADIO_ANALYTICS_ENABLED": "False", **settings}
    log = home / "ob-tuner.log"
    with serving("ob-tuner", "--port", str(free_port()), *args, env=env, log=log) as url:
        yield url
    output = log.read_text()
    assert "Traceback" not in output, f"ob-tuner printed a traceback:\n{output}"


@dataclass
class Served:
    """A running `ob-serve`: its URL, the demo client's widget and server keys, and its output so far
    (`log.read_text()`)."""

    url: str
    widget_key: str
    log: Path
    api_key: str

    @property
    def ws_origin(self) -> str:
        return self.url.replace("http://", "ws://", 1)


@contextmanager
def ob_serve(home: Path, *args: str, **settings: str) -> Iterator[Served]:
    """`ob-serve` on a free loopback port, embedded backend without a store file, in a clean environment (no
    OB_* settings but `settings`, no model key unless given; PYTHONPATH kept); stops it on the way out, and then
    fails if its output holds a traceback."""
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": os.environ.get("PYTHONPATH", ""), "HOME": str(home),
           "OB_MEMORY_STORE": "none", **settings}
    log = home / "ob-serve.log"
    with serving("ob-serve", "--port", str(free_port()), *args, env=env, log=log) as url:
        keys = wait_for(lambda: re.search(r"api key: (\S+) +widget key: (\S+)", log.read_text()), 10,
                        "ob-serve's keys")
        yield Served(url, keys.group(2), log, api_key=keys.group(1))
    output = log.read_text()
    assert "Traceback" not in output, f"ob-serve printed a traceback:\n{output}"


def watch_errors(page: Page) -> list[str]:
    """The list that collects, from now on, `page`'s uncaught JavaScript errors and console errors."""
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(f"page error: {error}"))
    page.on("console", lambda message: message.type == "error" and errors.append(f"console error: {message.text}"))
    return errors


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


# Reports each gradio error toast and each component's "Error" badge (gradio's status tracker) as it appears:
# a toast leaves after a few seconds, and a test's last look must still know it was there.
_WATCH_GRADIO_ERRORS = """
new MutationObserver(() => {
  for (const shown of document.querySelectorAll(
      '[data-testid="toast-body"], [data-testid="status-tracker"] .error')) {
    if (shown.dataset.obReported) continue;
    shown.dataset.obReported = "1";
    window.obGradioError(shown.innerText.replace(/\\s+/g, " ").trim());
  }
}).observe(document, {childList: true, subtree: true});
"""


class TunerPage:
    """The tuner's page by what a person does on it. `errors` collects what must never happen on it: uncaught
    JavaScript errors, console errors, gradio's error toasts and "Error" badges."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.errors = watch_errors(page)
        page.expose_function("obGradioError", lambda text: self.errors.append(f"gradio error: {text}"))
        page.add_init_script(_WATCH_GRADIO_ERRORS)

    def open(self, url: str) -> None:
        """Go to the tuner and wait until the editor shows the first profile (the page's load event)."""
        from playwright.sync_api import expect

        self.page.goto(url, wait_until="domcontentloaded")  # not "load": that waits for web fonts
        expect(self.field("model")).not_to_have_value("", timeout=LOAD_MS)

    def field(self, elem_id: str) -> Locator:
        """The text box of the field with `elem_id` (model, system-message, icebreaker, message)."""
        return self.page.locator(f"#{elem_id} textarea")

    def retype(self, elem_id: str, text: str) -> None:
        """Replace the text of field `elem_id` key by key, as a person does (Playwright's `fill` sets the value
        without the key events gradio's `input` listeners wait for)."""
        box = self.field(elem_id)
        box.press("ControlOrMeta+a")
        box.press_sequentially(text)

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
        """Send `message` from the playground to both profiles and wait until both replies are back."""
        self.start_sending(message)
        self.wait_for_replies()

    def start_sending(self, message: str) -> None:
        """Send `message` from the playground and wait until the page took it (it empties the message box and
        says a side is answering as it shows the message), not for the replies."""
        from playwright.sync_api import expect

        self.tab("Playground")
        self.field("message").fill(message)
        self.page.locator("#send").click()
        expect(self.field("message")).to_have_value("", timeout=TURN_MS)

    def wait_for_replies(self) -> None:
        """Wait until neither side is answering any more (the line under the panes stops saying so)."""
        from playwright.sync_api import expect

        expect(self.page.locator("#play-status")).not_to_contain_text(ANSWERING, timeout=TURN_MS)

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
        return self.session_rows()

    def session_rows(self) -> Locator:
        """The inspector's session list as it is (no refresh): the rows that name a session."""
        self.tab("Inspector")
        return self.page.locator("#sessions").get_by_role("row").filter(has_text=SESSION_ID)

    def schedule_rows(self) -> Locator:
        """The rows of the inspector's table of the shown session's scheduled messages (each names its id)."""
        return self.page.locator("#schedules").get_by_role("row").filter(has_text=SESSION_ID)

    def show(self, row: Locator) -> Locator:
        """Pick a session row, show it; the transcript's chat log. Waits for the row's own id in the id box (an
        earlier pick leaves another id there, and Show would show that session)."""
        from playwright.sync_api import expect

        cell = row.get_by_role("gridcell").first
        cell.click()
        expect(self.page.get_by_label("Session id (click a row)")).to_have_value(SESSION_ID.search(cell.inner_text())
                                                                               .group())
        self.page.get_by_role("button", name="Show", exact=True).click()
        return self.page.get_by_role("log")



# Reports each Content-Security-Policy violation (the event is composed: one in the shadow root reaches here).
_WATCH_CSP = """
document.addEventListener("securitypolicyviolation", (e) => window.obCspViolation(
  `${e.violatedDirective} blocked ${e.blockedURI || "inline"} (${e.sourceFile}:${e.lineNumber})`));
"""


class WidgetPage:
    """A page with the chat widget, by what a person sees and does (docs/widget.md, the DOM contract: Playwright's
    locators pierce the widget's open shadow root). `errors` collects uncaught errors, console errors and
    Content-Security-Policy violations."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.errors = watch_errors(page)
        page.expose_function("obCspViolation", lambda text: self.errors.append(f"CSP violation: {text}"))
        page.add_init_script(_WATCH_CSP)

    def forgive(self, status: int) -> int:
        """Take out of `errors` the console errors chromium logs for responses of HTTP `status` (it logs each
        4xx and 5xx a page's fetch gets, even one the page handles as it should), for a test that causes them;
        how many there were."""
        logged = [error for error in self.errors if f"status of {status} " in error]
        self.errors[:] = [error for error in self.errors if error not in logged]
        return len(logged)

    def goto(self, url: str) -> None:
        """Load `url` and wait until the widget's launcher shows."""
        from playwright.sync_api import expect

        self.page.goto(url)
        expect(self.launcher).to_be_visible(timeout=LOAD_MS)

    @property
    def launcher(self) -> Locator:
        return self.page.get_by_role("button", name="Open chat")

    @property
    def dialog(self) -> Locator:
        return self.page.get_by_role("dialog")

    @property
    def composer(self) -> Locator:
        return self.page.get_by_role("textbox", name="Message")

    @property
    def status(self) -> Locator:
        return self.page.get_by_role("status")

    @property
    def send_button(self) -> Locator:
        return self.page.get_by_role("button", name="Send")

    def messages(self, role: str) -> Locator:
        """The `user` or `assistant` messages in the conversation, oldest first."""
        return self.page.get_by_role("log").locator(f'[data-role="{role}"]')

    def open(self) -> None:
        from playwright.sync_api import expect

        self.launcher.click()
        expect(self.dialog).to_be_visible()

    def send(self, text: str) -> None:
        """Type `text` and press Enter, as a person does."""
        self.composer.fill(text)
        self.composer.press("Enter")

    def greeted(self) -> None:
        """Wait, once open, until the icebreaker is in and the widget may send (Send is enabled)."""
        from playwright.sync_api import expect

        expect(self.messages("assistant").first).not_to_be_empty(timeout=TURN_MS)
        expect(self.send_button).to_be_enabled(timeout=TURN_MS)

    def chat(self, text: str, reply: str) -> None:
        """Once the widget may send, send `text` and wait until all of `reply` shows as the newest message."""
        from playwright.sync_api import expect

        expect(self.send_button).to_be_enabled(timeout=TURN_MS)
        self.send(text)
        expect(self.messages("user").last).to_have_text(text, timeout=TURN_MS)
        expect(self.messages("assistant").last).to_have_text(reply, timeout=TURN_MS)


@contextmanager
def widget_page(browser: Browser, url: str | None = None, *, init_script: str | None = None,
                **context: Any) -> Iterator[WidgetPage]:
    """A page in a fresh browser context (its own localStorage: a new visitor, or another device of one) with
    Playwright's `context` options; `init_script` runs before each page's own scripts; on `url` with the
    launcher showing, if given. Fails if anything went wrong on its pages."""
    opened = browser.new_context(**{"viewport": VIEWPORT, **context})
    try:
        if init_script:
            opened.add_init_script(init_script)
        ui = WidgetPage(opened.new_page())
        if url:
            ui.goto(url)
        yield ui
        assert ui.errors == [], f"errors on the page: {ui.errors}"
    finally:
        opened.close()
