"""The chat widget in a real browser: `ob-serve` as a subprocess (it serves `/widget.js` and `/demo`), sites of
our own on another loopback origin that embed the widget the way a client's site does, the widget found by its
DOM contract (docs/widget.md: the `<openbrain-widget>` host's open shadow root, roles and accessible names), and
axe-core from npm. Shared by tests/widget and `scripts/screenshot_widget.py`.

`WidgetPage.errors` collects what must never happen on a page with the widget: uncaught JavaScript errors,
console errors and Content-Security-Policy violations (a blocked inline style in the shadow root is one).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

from support.browser import LOAD_MS, TURN_MS, collect_errors
from support.cli import free_port, serving

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

# axe-core is an npm package: installed on first use next to the venv (so `scripts/test`, `.ci/run` and a plain
# `pytest` all find it with no step of their own), at this exact version.
AXE_CORE_VERSION = "4.14.1"
NPM_TIMEOUT = 300
QUESTION, ANSWER = "what is 6 * 7", "6 * 7 = 42"  # the offline model's calculator turn
HOST = "openbrain-widget, #openbrain-widget"  # the widget's host element (DOM contract)


def axe_core() -> Path:
    """The path of axe-core's `axe.min.js`, installed with npm into `<venv>/node` if it is not there yet (one
    install at a time: pytest-xdist workers wait for the first)."""
    prefix = Path(sys.prefix) / "node"
    script = prefix / "node_modules" / "axe-core" / "axe.min.js"
    prefix.mkdir(parents=True, exist_ok=True)
    with (prefix / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _installed_version(prefix) != AXE_CORE_VERSION or not script.exists():
            npm = shutil.which("npm")
            assert npm, "npm is missing: the accessibility test installs axe-core with it (.ci/run installs npm)"
            subprocess.run([npm, "install", "--prefix", str(prefix), f"axe-core@{AXE_CORE_VERSION}",
                            "--no-audit", "--no-fund", "--save-exact"], check=True, capture_output=True,
                           timeout=NPM_TIMEOUT)
    return script


def _installed_version(prefix: Path) -> str | None:
    manifest = prefix / "node_modules" / "axe-core" / "package.json"
    return str(json.loads(manifest.read_text())["version"]) if manifest.exists() else None


@dataclass(frozen=True)
class Served:
    """A running `ob-serve`: its URL and the `local` demo client's keys."""

    url: str
    api_key: str
    widget_key: str

    @property
    def ws_origin(self) -> str:
        return self.url.replace("http://", "ws://", 1)


@contextmanager
def ob_serve(home: Path, *args: str, **settings: str) -> Iterator[Served]:
    """`ob-serve` on a free loopback port, embedded backend without a store file, no model key (the offline model
    answers), in a clean environment (no OB_* settings but `settings`; PYTHONPATH kept, so a worktree's code
    runs); stops it on the way out, and then fails if its output holds a traceback."""
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": os.environ.get("PYTHONPATH", ""), "HOME": str(home),
           "OB_MEMORY_STORE": "none", **settings}
    log = home / "ob-serve.log"
    with serving("ob-serve", "--port", str(free_port()), *args, env=env, log=log) as url:
        keys = next(line.split() for line in log.read_text().splitlines() if "widget key:" in line)
        yield Served(url, api_key=keys[keys.index("api") + 2], widget_key=keys[keys.index("widget") + 2])
    output = log.read_text()
    assert "Traceback" not in output, f"ob-serve printed a traceback:\n{output}"


def embed_tag(served: Served) -> str:
    """The tag a client's site embeds the widget with (docs/widget.md)."""
    return f'<script src="{served.url}/widget.js" data-key="{served.widget_key}" data-profile="default" defer></script>'


@dataclass
class Site:
    """A web site on its own loopback origin (not ob-serve's, as a client's site is): `pages` maps a path to its
    HTML and extra response headers; `/site.css` is `css`."""

    pages: dict[str, tuple[str, dict[str, str]]] = field(default_factory=dict)
    css: str = ""
    port: int = field(default_factory=free_port)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @contextmanager
    def serving(self) -> Iterator[str]:
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                if path == "/favicon.ico":  # the browser asks for it; a 404 would be a console error
                    self.send_response(204)
                    self.end_headers()
                    return
                if path == "/site.css":
                    body, headers = site.css, {"Content-Type": "text/css; charset=utf-8"}
                elif path in site.pages:
                    body, extra = site.pages[path]
                    headers = {"Content-Type": "text/html; charset=utf-8", **extra}
                else:
                    self.send_error(404)
                    return
                data = body.encode()
                self.send_response(200)
                for name, value in {**headers, "Content-Length": str(len(data)), "Cache-Control": "no-store"}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        thread = threading.Thread(target=server.serve_forever, name="test-site", daemon=True)
        thread.start()
        try:
            yield self.origin
        finally:
            server.shutdown()
            server.server_close()


# Reports each Content-Security-Policy violation (the event is composed: one in the shadow root reaches here).
_WATCH_CSP = """
document.addEventListener("securitypolicyviolation", (e) => window.obCspViolation(
  `${e.violatedDirective} blocked ${e.blockedURI || "inline"} (${e.sourceFile}:${e.lineNumber})`));
"""

# Every computed style property of an element (and of its ::before and ::after), for comparing two renderings;
# once its finite animations (the panel's opening) have ended, so both are read at rest.
COMPUTED_STYLE = """async (el) => {
  await Promise.all(el.getAnimations({subtree: true})
    .filter((a) => a.effect.getComputedTiming().endTime !== Infinity).map((a) => a.finished));
  const all = {};
  for (const pseudo of [null, "::before", "::after"]) {
    const style = getComputedStyle(el, pseudo);
    for (const name of style) all[(pseudo || "") + name] = style.getPropertyValue(name);
  }
  return all;
}"""


class WidgetPage:
    """A page with the widget, by what a person sees and does on it (locators pierce the open shadow root)."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.errors = collect_errors(page)
        page.expose_function("obCspViolation", lambda text: self.errors.append(f"CSP violation: {text}"))
        page.add_init_script(_WATCH_CSP)

    def goto(self, url: str) -> None:
        """Go to a page that embeds the widget and wait until its launcher shows."""
        from playwright.sync_api import expect

        self.page.goto(url, wait_until="domcontentloaded")
        expect(self.launcher()).to_be_visible(timeout=LOAD_MS)

    def host(self) -> Locator:
        return self.page.locator(HOST)

    def launcher(self) -> Locator:
        return self.page.get_by_role("button", name="Open chat")

    def panel(self, title: str = "Chat") -> Locator:
        return self.page.get_by_role("dialog", name=title)

    def log(self) -> Locator:
        return self.panel().get_by_role("log")

    def composer(self) -> Locator:
        return self.panel().get_by_role("textbox", name="Message")

    def send_button(self) -> Locator:
        return self.panel().get_by_role("button", name="Send")

    def status(self) -> Locator:
        return self.panel().get_by_role("status")

    def messages(self, role: str) -> Locator:
        """The messages of `role` (user or assistant) in the message list."""
        return self.log().locator(f'[data-role="{role}"]')

    def open(self) -> None:
        """Click the launcher; wait for the panel and the icebreaker (the first assistant message)."""
        from playwright.sync_api import expect

        self.launcher().click()
        expect(self.panel()).to_be_visible(timeout=LOAD_MS)
        expect(self.messages("assistant").first).not_to_be_empty(timeout=TURN_MS)

    def send(self, text: str = QUESTION, reply: str = ANSWER) -> None:
        """Once the widget may send (no reply streaming: Send is enabled), type `text` in the composer, press
        Enter, and wait until the whole `reply` shows as the newest assistant message."""
        from playwright.sync_api import expect

        expect(self.send_button()).to_be_enabled(timeout=TURN_MS)
        self.composer().fill(text)
        self.composer().press("Enter")
        expect(self.messages("user").last).to_have_text(text, timeout=TURN_MS)
        expect(self.messages("assistant").last).to_have_text(reply, timeout=TURN_MS)

    def style(self, element: Locator) -> dict[str, str]:
        return dict(element.evaluate(COMPUTED_STYLE))
