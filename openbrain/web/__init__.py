"""The embeddable chat widget and the demo site, as package data (docs/widget.md).

`widget()` is `widget.js` with what serving it needs: its ETag, its Subresource Integrity hash (`sha384-…`, the
"published SRI hash") and the name of its immutable versioned copy (`widget/<first 16 hex of its SHA-384>.js`).
`embed_tag(...)` is the one `<script>` tag a site adds (the demo page, `ob-admin client widget-snippet` and
docs/widget.md show the same one). `demo_page(...)` / `demo_css()` are `ob-serve`'s sample site. Nothing here
imports the rest of the package: the API, the CLIs and the local server all read the widget from here.
"""

from __future__ import annotations

import base64
import hashlib
import html
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

WIDGET_PATH = "/widget.js"
VERSIONED_DIR = "/widget/"
HASH_PREFIX_CHARS = 16  # of the SHA-384 in hex: the versioned copy's name


@dataclass(frozen=True)
class Widget:
    """`widget.js` and how it is served."""

    body: bytes
    sha384: bytes

    @property
    def etag(self) -> str:
        return f'"{self.sha384.hex()[:32]}"'

    @property
    def integrity(self) -> str:
        """The Subresource Integrity value of the file: `sha384-<base64>`."""
        return "sha384-" + base64.b64encode(self.sha384).decode()

    @property
    def versioned_path(self) -> str:
        """Where its immutable copy is served: `/widget/<16 hex>.js` (a new file, a new name)."""
        return f"{VERSIONED_DIR}{self.sha384.hex()[:HASH_PREFIX_CHARS]}.js"


@cache
def widget() -> Widget:
    body = files(__package__).joinpath("widget.js").read_bytes()
    return Widget(body, hashlib.sha384(body).digest())


def embed_tag(src: str, widget_key: str, profile: str = "default", *, integrity: str | None = None,
              ws: str | None = None) -> str:
    """The `<script>` tag that embeds the widget from `src`; with `integrity` (the versioned URL's SRI) it also
    carries `crossorigin="anonymous"`; `ws` is the WebSocket URL when it is not the API's `/ws` (AWS: ChatWsUrl)."""
    attributes = [("src", src)]
    if integrity:
        attributes += [("integrity", integrity), ("crossorigin", "anonymous")]
    attributes += [("data-key", widget_key), ("data-profile", profile)]
    if ws:
        attributes.append(("data-ws", ws))
    shown = " ".join(f'{name}="{html.escape(value)}"' for name, value in attributes)
    return f"<script {shown} defer></script>"


def demo_page(widget_key: str) -> str:
    """The demo site's page with the widget embedded for the demo client's `widget_key`."""
    page = files(__package__).joinpath("demo.html").read_text()
    return page.replace("{{widget}}", embed_tag(WIDGET_PATH, widget_key))


def demo_css() -> bytes:
    return files(__package__).joinpath("demo.css").read_bytes()
