"""The widget as the API serves it (`GET /widget.js`, `GET /widget/<hash>.js`), its published SRI hash, its size
budget, and the embed tag the demo page and docs/widget.md show. The widget in a browser: test_widget_browser.py."""

from __future__ import annotations

import base64
import gzip
import hashlib
import re
from pathlib import Path

import pytest
from support.api import ACME_ORIGIN, Api

from openbrain.web import demo_page, embed_tag, widget

ROOT = Path(__file__).resolve().parents[2]
FILE = ROOT / "openbrain" / "web" / "widget.js"
BUDGET_GZIPPED = 15 * 1024  # issue 14: at most 15 KB gzipped


@pytest.fixture
def anyone() -> Api:
    return Api(None)  # the script needs no key


def test_widget_js_is_the_file_as_javascript_cached_five_minutes_with_an_etag(anyone: Api) -> None:
    response = anyone.get("/widget.js", headers={"Origin": ACME_ORIGIN})
    assert response.status == 200
    assert response.body.encode() == FILE.read_bytes()
    assert response.header("Content-Type") == "text/javascript; charset=utf-8"
    assert response.header("Cache-Control") == "public, max-age=300"
    assert response.header("Access-Control-Allow-Origin") == "*"  # any site may load it, crossorigin="anonymous"
    assert response.header("X-Content-Type-Options") == "nosniff"
    etag = response.header("ETag")
    assert etag and re.fullmatch(r'"[0-9a-f]{32}"', etag)

    # a browser revalidating with the ETag gets 304 and no body; another ETag gets the file
    again = anyone.get("/widget.js", headers={"If-None-Match": etag})
    assert (again.status, again.body, again.header("ETag")) == (304, "", etag)
    assert anyone.get("/widget.js", headers={"If-None-Match": '"0123"'}).status == 200


def test_the_versioned_copy_is_named_by_its_sha384_and_cached_as_immutable(anyone: Api) -> None:
    digest = hashlib.sha384(FILE.read_bytes()).hexdigest()
    response = anyone.get(f"/widget/{digest[:16]}.js")
    assert response.status == 200
    assert response.body.encode() == FILE.read_bytes()
    assert response.header("Cache-Control") == "public, max-age=31536000, immutable"
    assert response.header("Content-Type") == "text/javascript; charset=utf-8"

    # any other name is not a version the API has: 404 with the API's error body
    missing = anyone.get(f"/widget/{'0' * 16}.js")
    assert missing.status == 404 and missing.error["code"] == "not_found"
    assert widget().versioned_path in missing.error["message"]


def test_the_published_sri_hash_is_the_sha384_of_the_served_bytes(anyone: Api) -> None:
    served = anyone.get(widget().versioned_path).body.encode()
    assert widget().integrity == "sha384-" + base64.b64encode(hashlib.sha384(served).digest()).decode()


def test_the_widget_routes_are_not_in_the_openapi_document(anyone: Api) -> None:
    paths = anyone.get("/openapi.json").json["paths"]
    assert not [path for path in paths if path.startswith(("/widget.js", "/widget/"))]
    assert "/widget-tokens" in paths  # the API route beside them is documented


def test_the_widget_stays_within_15_kb_gzipped() -> None:
    assert len(gzip.compress(FILE.read_bytes(), compresslevel=9)) <= BUDGET_GZIPPED


def test_the_widget_never_evaluates_code_or_parses_html_or_sets_inline_style() -> None:
    # what a strict Content-Security-Policy forbids, and what would turn model text into markup
    source = FILE.read_text()
    for forbidden in ("eval(", "new Function", "innerHTML", "outerHTML", "insertAdjacentHTML", "document.write",
                      'setAttribute("style"', "setTimeout(\"", "cssText"):
        assert forbidden not in source, forbidden


def test_the_embed_tag_escapes_what_it_is_given() -> None:
    tag = embed_tag('https://api.example/widget.js"><script>', "obw.acme.k&y", "sales")
    assert tag == ('<script src="https://api.example/widget.js&quot;&gt;&lt;script&gt;" data-key="obw.acme.k&amp;y" '
                   'data-profile="sales" defer></script>')
    pinned = embed_tag("https://api.example/widget/abc.js", "obw.acme.key", integrity="sha384-x", ws="wss://ws.example/Prod")
    assert pinned == ('<script src="https://api.example/widget/abc.js" integrity="sha384-x" crossorigin="anonymous" '
                      'data-key="obw.acme.key" data-profile="default" data-ws="wss://ws.example/Prod" defer></script>')


def test_the_demo_page_and_the_docs_show_the_same_embed_tag() -> None:
    # the demo page embeds the widget with one tag, the docs' first example (with ob-serve's URL and a
    # placeholder key) is that tag
    assert embed_tag("/widget.js", "obw.local.KEY") in demo_page("obw.local.KEY")
    docs = (ROOT / "docs" / "widget.md").read_text()
    assert embed_tag("http://127.0.0.1:8080/widget.js", "obw.local.WIDGET-KEY") in docs
