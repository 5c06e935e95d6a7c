"""`GET /widget.js` and `GET /widget/<hash>.js`: the embeddable chat widget (docs/widget.md), no key needed.

`/widget.js` is the convenient URL (cached 5 minutes, revalidated by its ETag: 304 to a matching
`If-None-Match`); `/widget/<first 16 hex of its SHA-384>.js` is the same bytes under a name that changes with
them, cached for a year as immutable, the URL to pin with the published SRI hash (`ob-admin client
widget-snippet`). Any site may load the script (`Access-Control-Allow-Origin: *`: `crossorigin="anonymous"`
needs it); calling the API is what the key and the client's allowed origins guard.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from openbrain.core.errors import NotFoundError
from openbrain.web import VERSIONED_DIR, WIDGET_PATH, widget

router = Router()
CONTENT_TYPE = "text/javascript; charset=utf-8"
SHORT_CACHE = "public, max-age=300"
IMMUTABLE_CACHE = "public, max-age=31536000, immutable"


def _script(cache_control: str) -> Response[Any]:
    script = widget()
    headers = {"Cache-Control": cache_control, "ETag": script.etag, "Access-Control-Allow-Origin": "*",
               "X-Content-Type-Options": "nosniff"}
    if script.etag in router.current_event.headers.get("if-none-match", ""):
        return Response(status_code=304, content_type=None, body="", headers=headers)
    return Response(status_code=200, content_type=CONTENT_TYPE, body=script.body.decode(), headers=headers)


@router.get(WIDGET_PATH, include_in_schema=False)
def widget_js() -> Response[Any]:
    return _script(SHORT_CACHE)


@router.get(VERSIONED_DIR + "<name>", include_in_schema=False)
def versioned_widget_js(name: str) -> Response[Any]:
    if VERSIONED_DIR + name != widget().versioned_path:  # an older version is not kept: the page must update
        raise NotFoundError(f"no widget version {name[:40]!r}; the current one is {widget().versioned_path}")
    return _script(IMMUTABLE_CACHE)
