"""The HTTPS chat API (API Gateway REST, Lambda proxy integration): `handler(event, context)`.

Routes live in `routes/` (one module per concept), the error mapping in `routes/errors.py`, CORS in
`cors.py`. Importing this module creates no AWS client, reads no settings and loads no agent runtime:
the backend is built by `openbrain.aws.backend.get_backend()` on the first request that needs it. API
reference: docs/api.md, and `GET /openapi.json` / `GET /swagger` at run time.
"""

from __future__ import annotations

import json
import time
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types

from openbrain.aws.backend import get_backend
from openbrain.core.errors import InvalidInputError

from .cors import cors_middleware
from .observability import logger
from .routes import agent_configs, chat, errors, leads, sessions, status
from .routes.errors import PayloadTooLargeError
from .routes.security import SECURITY_SCHEMES

TITLE = "OpenBrain chat API"
VERSION = "1"


def _bounded_json(body: str) -> Any:
    """json.loads, refusing bodies over `OB_MAX_BODY_BYTES` before parsing them."""
    limit = get_backend().settings.max_body_bytes
    size = len(body) if body.isascii() else len(body.encode())
    if size > limit:
        raise PayloadTooLargeError(f"the request body is {size} bytes; the limit is {limit} (OB_MAX_BODY_BYTES)")
    return json.loads(body, parse_constant=_no_constants)


def _no_constants(name: str) -> Any:
    """NaN and Infinity are not JSON (Python's parser accepts them); refuse them as bad input."""
    raise InvalidInputError(f"{name} is not a JSON number")


app = APIGatewayRestResolver(
    enable_validation=True,
    response_validation_error_http_code=500,  # a response that fails its schema is our bug, not the caller's
    json_body_deserializer=_bounded_json,
)
app.configure_openapi(
    title=TITLE,
    version=VERSION,
    description="Chat with OpenBrain agents and manage a client's profiles, sessions and leads. "
    "Every route but `/`, `/openapi.json` and `/swagger` needs the client's API key in `x-api-key`.",
    security_schemes=SECURITY_SCHEMES,
)
for module in (errors, status, chat, sessions, leads, agent_configs):
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
    logger.clear_state()
    logger.set_correlation_id((event.get("requestContext") or {}).get("requestId"))
    response = app.resolve(event, context)
    logger.info(
        "request",
        extra={
            "method": event.get("httpMethod"),
            "route": event.get("resource"),  # the template (/sessions/{session_id}), not the ids
            "status": response.get("statusCode"),
            "latency_ms": round((time.perf_counter() - started) * 1000, 1),
        },
    )
    return response
