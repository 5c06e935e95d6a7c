"""The HTTPS chat API (API Gateway REST, Lambda proxy integration): `handler(event, context)`.

Routes live in `routes/` (one module per concept), the error mapping in `routes/errors.py`, CORS in
`cors.py`. Importing this module creates no AWS client, reads no settings and loads no agent runtime:
the backend is built by `openbrain.aws.backend.get_backend()` on the first request that needs it. API
reference: docs/api.md, and `GET /openapi.json` / `GET /swagger` at run time.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import BaseRouter, Route
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

from .body import json_object
from .cors import cors_middleware
from .observability import logger
from .routes import agent_configs, chat, errors, leads, limits, sessions, status, usage, widget, widget_tokens
from .routes.security import SECURITY_SCHEMES

TITLE = "OpenBrain chat API"
VERSION = "1"


@dataclass
class _RequestState:
    event: APIGatewayProxyEvent | None = None
    lambda_context: Any = None
    context: dict[str, Any] = field(default_factory=dict)
    processed_stack_frames: list[str] = field(default_factory=list)


class PerRequestRestResolver(APIGatewayRestResolver):
    """`APIGatewayRestResolver` whose per-invocation state is per request, so one warm process may resolve
    several requests at once (`ob-serve` runs the handler on a thread pool, without a lock).

    Powertools' `resolve()` keeps the event and Lambda context as CLASS attributes of `BaseRouter` and the
    routing context (the authenticated client, the matched route) on the resolver: two threads would
    read each other's client, cookie and CORS origin. Here they live in a ContextVar (each thread, each
    asyncio task, has its own), the pattern of Powertools' own `HttpResolverLocal`; routers reach them
    through `router.api_resolver`. Everything else, the stage handling of the REST API included, is
    `APIGatewayRestResolver`'s: in Lambda (one event at a time) this behaves exactly like it."""

    def __init__(self, **kwargs: Any) -> None:
        self._startup_state = _RequestState()  # what is set outside a request: include_router's context
        self._request_state: ContextVar[_RequestState | None] = ContextVar("openbrain_api_request", default=None)
        super().__init__(**kwargs)

    @property
    def _state(self) -> _RequestState:
        return self._request_state.get() or self._startup_state

    @property  # type: ignore[override]
    def current_event(self) -> APIGatewayProxyEvent:
        return self._state.event or BaseRouter.current_event  # type: ignore[return-value]

    @current_event.setter
    def current_event(self, value: APIGatewayProxyEvent) -> None:
        self._state.event = value

    @property  # type: ignore[override]
    def lambda_context(self) -> Any:
        return self._state.lambda_context or BaseRouter.lambda_context

    @lambda_context.setter
    def lambda_context(self, value: Any) -> None:
        self._state.lambda_context = value

    @property  # type: ignore[override]
    def context(self) -> dict[str, Any]:
        return self._state.context

    @context.setter
    def context(self, value: dict[str, Any]) -> None:
        self._state.context = value

    @property  # type: ignore[override]
    def processed_stack_frames(self) -> list[str]:
        return self._state.processed_stack_frames

    @processed_stack_frames.setter
    def processed_stack_frames(self, value: list[str]) -> None:
        self._state.processed_stack_frames = value

    def methods_at(self, path: str) -> list[str]:
        """The methods `path` answers (a 405's `Allow`; empty: no such path): its routes', HEAD wherever GET is (a
        GET route answers it), and OPTIONS (a CORS preflight, `cors.py`)."""
        methods = {route.method for route in self._routes() if route.rule.match(self._remove_prefix(path))}
        return sorted(methods | {"OPTIONS"} | ({"HEAD"} if "GET" in methods else set())) if methods else []

    def allowed_methods(self) -> list[str]:
        """`methods_at` the current request's path."""
        return self.methods_at(self.current_event.path)

    def route_template(self, method: str, path: str) -> str | None:
        """The template of the route that answers `method` on `path` (`/sessions/{session_id}`; a HEAD's is its
        GET's); None if none does. Matched as Powertools matches: static routes first, the first that fits."""
        path = self._remove_prefix(path)
        method = "GET" if method == "HEAD" else method
        route = next((r for r in self._routes() if r.method == method and r.rule.match(path)), None)
        return re.sub(r"<(\w+)>", r"{\1}", route.path) if route is not None else None

    def _routes(self) -> list[Route]:
        return self._static_routes + self._dynamic_routes

    def resolve(self, event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        """`APIGatewayRestResolver.resolve` with this request's own state (its writes to the `BaseRouter`
        class attributes still happen, and nothing here reads them while a request's state is set). A HEAD is
        answered as a GET where the path has a GET route (the transport, API Gateway or ob-serve, sends its
        headers without the body); elsewhere it is 405 like any method the path has no route for."""
        if event.get("httpMethod") == "HEAD" and self.route_template("HEAD", event.get("path") or "/"):
            event = {**event, "httpMethod": "GET"}
        state = _RequestState(event=self._to_proxy_event(dict(event)),  # type: ignore[arg-type]
                              lambda_context=context, context=dict(self._startup_state.context))
        token = self._request_state.set(state)
        try:
            return super().resolve(event, context)
        finally:
            self._request_state.reset(token)


app = PerRequestRestResolver(
    enable_validation=True,
    response_validation_error_http_code=500,  # a response that fails its schema is our bug, not the caller's
    json_body_deserializer=json_object,
)
app.configure_openapi(
    title=TITLE,
    version=VERSION,
    description="Chat with OpenBrain agents and manage a client's profiles, sessions and leads. "
    "Every route but `/`, `/openapi.json` and `/swagger` needs the client's API key in `x-api-key`.",
    security_schemes=SECURITY_SCHEMES,
)
for module in (errors, status, chat, sessions, leads, agent_configs, limits, usage, widget, widget_tokens):
    app.include_router(module.router)
app.use(middlewares=[cors_middleware])
app.enable_swagger(path="/swagger")


@app.get("/openapi.json", include_in_schema=False)
def openapi_json() -> Response[Any]:
    return Response(
        status_code=200, content_type=content_types.APPLICATION_JSON, body=app.get_openapi_json_schema()
    )


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The Lambda entry point (template.yaml: `lambdas/chat_api/app.handler`)."""
    started = time.perf_counter()
    # Thread-local keys: ob-serve resolves several requests at once in one process (a Lambda, one at a time).
    logger.thread_safe_clear_keys()
    logger.thread_safe_append_keys(correlation_id=(event.get("requestContext") or {}).get("requestId"))
    response = app.resolve(event, context)
    method = str(event.get("httpMethod") or "")
    logger.info(
        "request",
        extra={
            "method": method,
            # the matched template (/sessions/{session_id}), not the ids (API Gateway's `resource` is /{proxy+})
            "route": app.route_template(method, str(event.get("path") or "/")),
            "status": response.get("statusCode"),
            "latency_ms": round((time.perf_counter() - started) * 1000, 1),
        },
    )
    return response
