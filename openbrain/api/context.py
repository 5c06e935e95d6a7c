"""What a request carries beyond its body: the caller's client (from `x-api-key`), ids in the path, cookies."""

from __future__ import annotations

from http.cookies import CookieError, SimpleCookie

from aws_lambda_powertools.event_handler.api_gateway import BaseRouter

from openbrain.auth import authenticate
from openbrain.errors import NotFoundError
from openbrain.ids import NAME_PATTERN
from openbrain.orm import Client

from .observability import logger

CLIENT = "openbrain_client"
SESSION_COOKIE = "Session"
# Session and lead ids are ULIDs, profile names 1-64 of [A-Za-z0-9_-]: anything else cannot exist, and
# must not reach DynamoDB (whose key limits would turn bad input into a 5xx).
_ID = NAME_PATTERN


def current_client(router: BaseRouter) -> Client:
    """The Client the request's API key belongs to (`UnauthorizedError` if none); one GetItem per request."""
    client = router.context.get(CLIENT)
    if client is None:
        client = authenticate(router.current_event.headers.get("x-api-key"))
        router.append_context(**{CLIENT: client})
        logger.append_keys(client_id=client.client_id)
    return client


def authenticated_client(router: BaseRouter) -> Client | None:
    """The client authenticated earlier in this request, if any (for CORS on every response)."""
    return router.context.get(CLIENT)


def is_id(value: str | None) -> bool:
    """Whether `value` could be a session id, lead id or profile name."""
    return value is not None and _ID.fullmatch(value) is not None


def existing_id(value: str | None, what: str) -> str:
    """`value` if it could be the id of a stored `what`; otherwise `NotFoundError`, as for a missing one."""
    if value is None or not is_id(value):
        raise NotFoundError(f"{what} not found")
    return value


def cookie(router: BaseRouter, name: str) -> str | None:
    """The value of cookie `name` of the request, if any."""
    header = router.current_event.headers.get("cookie")
    if not header:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header)
    except CookieError:
        return None
    morsel = jar.get(name)
    return morsel.value if morsel is not None else None
