"""CORS for browser widgets: only origins a client allows, never `*`.

- Preflight (`OPTIONS`, sent by browsers without the API key): 204 with `Access-Control-Allow-Origin`
  set to the request's Origin when some client allows that origin (`openbrain.services.auth`, cached per process
  for a minute); otherwise 403 `forbidden` and no CORS headers.
- Every other response carries `Access-Control-Allow-Origin: <Origin>` and
  `Access-Control-Allow-Credentials: true` only when the request was authenticated and the Origin is in
  that client's `allowed_origins`. All responses carry `Vary: Origin`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import BaseRouter
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware

from openbrain.core.errors import ForbiddenError
from openbrain.services.auth import origin_allowed_by_any_client

from .context import authenticated_client, backend

if TYPE_CHECKING:
    from openbrain.storage.orm import Client

ALLOW_METHODS = "DELETE,GET,OPTIONS,POST,PUT"
ALLOW_HEADERS = "Content-Type,X-Api-Key,X-User-Id,X-User-Hash,X-Widget-Token"  # the key, the end user's identity
PREFLIGHT_MAX_AGE_SECONDS = 600


def request_origin(router: BaseRouter) -> str | None:
    return router.current_event.headers.get("origin") or None


def cors_headers(router: BaseRouter) -> dict[str, str]:
    """The CORS headers of an actual (non-preflight) response to the current request."""
    return response_cors_headers(request_origin(router), authenticated_client(router))


def response_cors_headers(origin: str | None, client: Client | None) -> dict[str, str]:
    """The CORS headers of an actual response to a request from `origin` authenticated as `client` (None: not
    authenticated), here or in `ob-serve`'s SSE route."""
    headers = {"Vary": "Origin"}
    if origin and client is not None and client.allows_origin(origin):
        headers["Access-Control-Allow-Origin"] = origin
        headers["Access-Control-Allow-Credentials"] = "true"
        headers["Access-Control-Expose-Headers"] = "Retry-After"  # a widget shows when it may send again
    return headers


def preflight(router: BaseRouter) -> Response[Any]:
    origin = request_origin(router)
    if origin is None or not origin_allowed_by_any_client(origin, backend()):
        raise ForbiddenError("this origin may not call the API")
    return Response(
        status_code=204,
        content_type=None,
        body="",
        headers={
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Credentials": "true",
            "Access-Control-Allow-Methods": ALLOW_METHODS,
            "Access-Control-Allow-Headers": ALLOW_HEADERS,
            "Access-Control-Max-Age": str(PREFLIGHT_MAX_AGE_SECONDS),
            "Vary": "Origin",
        },
    )


def cors_middleware(app: Any, next_middleware: NextMiddleware) -> Response[Any]:
    """Answers preflights; adds the CORS headers to what the routes return (errors add their own)."""
    if app.current_event.http_method.upper() == "OPTIONS":
        return preflight(app)
    response: Response[Any] = next_middleware(app)
    response.headers.update(cors_headers(app))
    return response
