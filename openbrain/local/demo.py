"""`ob-serve`'s sample site: `GET /demo` (a page with the widget embedded for the `local` demo client) and its
stylesheet `GET /demo.css` (docs/widget.md). The widget itself (`/widget.js`) is the API's route.

The page is served as a careful site would serve it, with a strict Content-Security-Policy (no inline script or
style anywhere; scripts and styles from this origin only; connections to this origin's HTTP and WebSocket), so
the demo shows, and the browser tests prove, that the widget needs nothing more.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from starlette.types import Send

from openbrain.web import demo_css, demo_page

PAGES = frozenset({"/demo", "/demo.css"})
_HOST = re.compile(r"[A-Za-z0-9.\-]+(:\d{1,5})?|\[[0-9A-Fa-f:.]+\](:\d{1,5})?")


@dataclass
class DemoSite:
    """The demo site; `widget_key` is the demo client's, set by `ob-serve` before it starts serving (None: the
    page says the demo is off)."""

    widget_key: str | None = None

    def policy(self, host: str) -> str:
        """The page's Content-Security-Policy; `host` (the request's, checked) names its WebSocket origin."""
        ws = f" ws://{host}" if _HOST.fullmatch(host) else ""
        return ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                f"connect-src 'self'{ws}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")

    async def respond(self, path: str, method: str, host: str, send: Send) -> None:
        if path == "/demo.css":
            status, media_type, body = 200, "text/css; charset=utf-8", demo_css()
        elif self.widget_key is None:
            status, media_type, body = 404, "text/plain; charset=utf-8", b"the demo client has no widget key here"
        else:
            status, media_type, body = 200, "text/html; charset=utf-8", demo_page(self.widget_key).encode()
        headers = [(b"content-type", media_type.encode()), (b"content-length", str(len(body)).encode()),
                   (b"cache-control", b"no-store"), (b"x-content-type-options", b"nosniff"),
                   (b"content-security-policy", self.policy(host).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})
