"""The ONE mapping from errors to HTTP responses. Every error body is `{"error": {"code", "message"}}`.

| raised | status | code |
| --- | --- | --- |
| malformed JSON body | 400 | invalid_json |
| `UnauthorizedError` | 401 | unauthorized |
| `ForbiddenError` | 403 | forbidden |
| `NotFoundError`, unknown route | 404 | not_found |
| a known path with another method | 405 (with `Allow`) | method_not_allowed |
| `ConflictError` (`SessionEndedError`, `RequestInProgressError`, `ScheduleLimitError`) | 409 | conflict, \
session_ended, request_in_progress, schedule_limit |
| `PayloadTooLargeError` (body over `OB_MAX_BODY_BYTES`) | 413 | payload_too_large |
| body in another media type than JSON | 415 | unsupported_media_type |
| `InvalidInputError`, request validation (types, missing fields) | 422 | invalid_input |
| `RateLimitedError` (over a rate limit or quota: services/limits.py) | 429 (with `Retry-After`) | rate_limited |
| `ItemTooLargeError` (an `InvalidInputError`: over DynamoDB's 400 KB item limit) | 422 | item_too_large |
| `IdempotencyKeyReusedError` (an `InvalidInputError`) | 422 | idempotency_key_reused |
| `ConfigurationError` | 500 | configuration_error (generic message; the detail is logged) |
| `UpstreamError` | 502 | upstream_error |
| `UpstreamTimeoutError` | 504 | upstream_timeout |
| anything else (`StoredDataError`, bugs, a response that fails its schema) | 500 | internal_error |
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import BaseRouter, Router
from aws_lambda_powertools.event_handler.exceptions import NotFoundError as RouteNotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
    ResponseValidationError,
)
from pydantic import BaseModel, Field

from openbrain.core.errors import (
    ConfigurationError,
    ConflictError,
    DatabaseError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    OpenBrainError,
    RateLimitedError,
    UnauthorizedError,
    UpstreamError,
    UpstreamTimeoutError,
)
from openbrain.domain.profile import PROFILE_ERROR

from ..cors import cors_headers
from ..observability import logger


class PayloadTooLargeError(InvalidInputError):
    """The request body is larger than the API accepts."""

    code = "payload_too_large"


class InvalidJsonError(InvalidInputError):
    """The request body is not JSON (what Powertools' request validation says over HTTP)."""

    code = "invalid_json"


STATUS: dict[type[OpenBrainError], HTTPStatus] = {
    UnauthorizedError: HTTPStatus.UNAUTHORIZED,
    ForbiddenError: HTTPStatus.FORBIDDEN,
    NotFoundError: HTTPStatus.NOT_FOUND,
    ConflictError: HTTPStatus.CONFLICT,
    PayloadTooLargeError: HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
    InvalidJsonError: HTTPStatus.BAD_REQUEST,
    InvalidInputError: HTTPStatus.UNPROCESSABLE_ENTITY,
    RateLimitedError: HTTPStatus.TOO_MANY_REQUESTS,
    UpstreamTimeoutError: HTTPStatus.GATEWAY_TIMEOUT,
    UpstreamError: HTTPStatus.BAD_GATEWAY,
    ConfigurationError: HTTPStatus.INTERNAL_SERVER_ERROR,
}
_GENERIC = {
    ConfigurationError: "the service is not configured correctly; its operators have been told",
    DatabaseError: "the database failed; please try again (its operators have been told)",
}
INTERNAL_MESSAGE = "something went wrong on our side; please try again"
INVALID_JSON_MESSAGE = "the request body is not valid JSON"

router = Router()


class ErrorDetail(BaseModel):
    code: str = Field(description="machine-readable, e.g. `invalid_input` (docs/api.md, Errors)")
    message: str = Field(description="what is wrong, for a person; names the field")


class ErrorBody(BaseModel):
    """Every error answer of the API."""

    error: ErrorDetail


_MEANING = {
    400: "the body is not UTF-8 JSON", 401: "no or an unknown API key",
    403: "the key may not do this (a widget key, another client's id)", 404: "no such item for the key's client",
    405: "the path has no route for this method (see Allow)",
    409: "a version conflict, a concurrent turn, an ended conversation or a request in flight",
    413: "the body is over OB_MAX_BODY_BYTES", 414: "the URL is over 8 KiB", 415: "the body is not application/json",
    422: "the body, a path or a query value is invalid (the message names it)",
    429: "over a rate limit or quota of the client (see Retry-After, in seconds)",
    431: "the request headers are over 16 KiB", 500: "a bug on our side",
    502: "the model provider or the database failed", 504: "the model provider did not answer in time",
}


def error_responses(*statuses: int, ok: int | None = 200) -> dict[int, Any]:
    """A route's OpenAPI `responses`: `ok` (its return type's schema), and each error status (with those any
    route may answer: 414 and 431, a URL or headers too long, and 500) with the error envelope, so the document
    lists every status a route answers (schemathesis checks it). Powertools documents only what is given here
    once `responses` is set."""
    documented: dict[int, Any] = {ok: {"description": "OK"}} if ok else {}
    for status in sorted({*statuses, 414, 422, 431, 500}):  # 422: Powertools documents its own shape otherwise
        documented[status] = {"description": _MEANING[status], "content": {"application/json": {"model": ErrorBody}}}
    return documented


BODY_ERRORS = (400, 413, 415, 422)  # a route that takes a JSON body
KEY_ERRORS = (401, 403, 502)  # a route behind the API key (it reads the client from the database)


def error_response(router: BaseRouter, status: int, code: str, message: str) -> Response[Any]:
    """An error response with the CORS headers the request earned."""
    return Response(
        status_code=int(status),
        content_type=content_types.APPLICATION_JSON,
        body={"error": {"code": code, "message": message}},
        headers=cors_headers(router),
    )


def status_of(exc: OpenBrainError | type[OpenBrainError]) -> HTTPStatus | None:
    """The status of the nearest class of `exc` in `STATUS` (None: not an error the API expects)."""
    for cls in (exc if isinstance(exc, type) else type(exc)).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return None


def status_of_code(code: str) -> HTTPStatus:
    """The status of the errors `public_error` words as `code`: how `ob-serve`'s SSE route answers a stream
    that ends in `error` before it started (`openbrain/local/sse.py`)."""
    pending: list[type[OpenBrainError]] = [OpenBrainError]
    while pending:
        cls = pending.pop()
        status = status_of(cls)
        if cls.code == code and status is not None:
            return status
        pending.extend(cls.__subclasses__())
    return HTTPStatus.INTERNAL_SERVER_ERROR  # internal_error, and configuration_error (500 either way)


def public_error(exc: Exception) -> tuple[HTTPStatus, str, str]:
    """The status, code and message the caller gets for `exc`, logged as the API logs it: the one mapping for
    HTTP responses and the streams' `error` events. Anything but a library error is a 500 with its traceback
    in the log."""
    status = status_of(exc) if isinstance(exc, OpenBrainError) else None
    if status is None or not isinstance(exc, OpenBrainError):
        logger.exception("unexpected error", extra={"error_type": type(exc).__name__})
        return HTTPStatus.INTERNAL_SERVER_ERROR, "internal_error", INTERNAL_MESSAGE
    if status >= 500:
        logger.error("request failed", extra={"error_code": exc.code, "status": int(status), "detail": exc.message})
    else:
        logger.info("request refused", extra={"error_code": exc.code, "status": int(status)})
    generic = next((text for cls, text in _GENERIC.items() if isinstance(exc, cls)), None)
    return status, exc.code, generic or exc.message


def error_event(exc: Exception) -> dict[str, Any]:
    """`{"type": "error", "code", "message"}`: how a stream ends on `exc` (docs/api.md, Streaming); with
    `retry_after` (seconds) when rate limited."""
    _, code, message = public_error(exc)
    event: dict[str, Any] = {"type": "error", "code": code, "message": message}
    if isinstance(exc, RateLimitedError):
        event["retry_after"] = exc.retry_after
    return event


@router.exception_handler(OpenBrainError)
def library_error(exc: OpenBrainError) -> Response[Any]:
    response = error_response(router, *public_error(exc))
    if isinstance(exc, RateLimitedError):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


@router.exception_handler(RequestValidationError)
def invalid_request(exc: RequestValidationError) -> Response[Any]:
    errors = exc.errors()
    first: dict[str, Any] = errors[0] if errors else {}
    if first.get("type") == "json_invalid":
        return library_error(InvalidJsonError(INVALID_JSON_MESSAGE))
    where = ".".join(str(part) for part in first.get("loc", ())) or "body"
    message = str(first.get("msg") or "invalid value")
    if first.get("type") != PROFILE_ERROR:  # the profile schema's own messages name the field already
        message = f"{where}: {message}"
    return error_response(router, HTTPStatus.UNPROCESSABLE_ENTITY, "invalid_input", message)


@router.exception_handler(UnicodeDecodeError)
def not_utf8(exc: UnicodeDecodeError) -> Response[Any]:
    # Powertools decodes a base64 body (what API Gateway sends for binary content) as UTF-8 on first use.
    return error_response(router, HTTPStatus.BAD_REQUEST, "invalid_json", "the request body is not UTF-8 JSON")


@router.exception_handler(RequestUnsupportedContentType)
def unsupported_media_type(exc: RequestUnsupportedContentType) -> Response[Any]:
    return error_response(
        router, HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", "send the body as application/json"
    )


@router.exception_handler(RouteNotFoundError)
def route_not_found(exc: RouteNotFoundError) -> Response[Any]:
    allowed = router.api_resolver.allowed_methods() if router.api_resolver else []  # type: ignore[attr-defined]
    method = router.current_event.http_method.upper()
    if not allowed or method == "OPTIONS":  # a preflight of a known path is CORS's (cors.py)
        return error_response(router, HTTPStatus.NOT_FOUND, "not_found", "no such route")
    response = error_response(router, HTTPStatus.METHOD_NOT_ALLOWED, "method_not_allowed",
                              f"{method[:32]} is not allowed here; use {', '.join(allowed)}")
    response.headers["Allow"] = ", ".join(allowed)
    return response


@router.exception_handler([ResponseValidationError, Exception])
def internal_error(exc: Exception) -> Response[Any]:
    return error_response(router, *public_error(exc))
