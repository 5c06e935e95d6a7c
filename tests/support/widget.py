"""What the widget's page-guarantee tests (tests/web) need beyond support/browser.py's `ob_serve()` and
`WidgetPage`: sites of our own on another loopback origin, each page with its own headers (a strict
Content-Security-Policy), the computed styles of a rendering, and axe-core from npm.
"""

from __future__ import annotations

import fcntl
import json
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

from support.cli import free_port

if TYPE_CHECKING:
    from playwright.sync_api import Locator

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
