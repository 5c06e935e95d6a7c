"""What the widget's browser tests (tests/web) need beyond support/browser.py's `ob_serve()` and `WidgetPage`:
sites of our own on another loopback origin (as a client's site is), each page with its own headers (a strict
Content-Security-Policy); the demo client's rate limits; the computed styles of a rendering; axe-core from npm.
"""

from __future__ import annotations

import fcntl
import json
import shutil
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

from support.cli import free_port

if TYPE_CHECKING:
    from playwright.sync_api import Locator

    from support.browser import Served

# axe-core is an npm package: installed on first use next to the venv (so `scripts/test`, `.ci/run` and a plain
# `pytest` all find it with no step of their own), at this exact version.
AXE_CORE_VERSION = "4.14.1"
NPM_TIMEOUT = 300
QUESTION, ANSWER = "what is 6 * 7", "6 * 7 = 42"  # the offline model's calculator turn
HOST = "openbrain-widget, #openbrain-widget"  # the widget's host element (DOM contract)
GENEROUS = {"user_burst": 1000, "user_per_minute": 1000, "client_per_minute": 1000}  # many turns per test
# A shop's page: its own links, button and fields (the widget must leave them be, and a keyboard passes them)
CONTENT = """
<header><h1>Example Shop</h1><nav><a href="/about">About</a> <a href="/contact">Contact</a></nav></header>
<main><p>Welcome to our shop. <button type="button">Sign in</button></p>
<div class="note"><p>Opening hours: 9 to 5.</p><label>Search <input type="search"></label></div>
<textarea aria-label="Feedback">A page's own text box</textarea></main>
"""


def page_html(head: str, body: str = CONTENT) -> str:
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Example Shop</title>{head}</head>'
            f"<body>{body}</body></html>")


def put_limits(served: Served, limits: dict[str, int]) -> None:
    """Set the demo client's rate limits with its server key (`PUT /limits`: every limit left out is the default)."""
    request = urllib.request.Request(f"{served.url}/limits", data=json.dumps(limits).encode(), method="PUT",
                                     headers={"Content-Type": "application/json", "x-api-key": served.api_key})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200


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


@dataclass
class Site:
    """A web site on its own loopback origin (not ob-serve's, as a client's site is: chromium keeps a page from a
    public address from loading anything from a private one, so both are loopback): `pages` maps a path to its
    body and extra response headers (HTML unless they say another Content-Type), read at each request, so a test
    may change them while the site serves; `/site.css` is `css`."""

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


def computed_style(element: Locator) -> dict[str, str]:
    return dict(element.evaluate(COMPUTED_STYLE))
