"""What a request carries beyond its body: the caller's client (from `x-api-key`) and end user (`X-User-Id` +
`X-User-Hash` or `X-Widget-Token`), ids in the path, cookies, and the backend (and its stores) the routes hand
to services."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from http.cookies import CookieError, SimpleCookie

from aws_lambda_powertools.event_handler.api_gateway import BaseRouter

from openbrain.aws.backend import Backend, get_backend
from openbrain.core.errors import ForbiddenError
from openbrain.domain.identity import EndUser
from openbrain.services.auth import authenticate
from openbrain.services.identity import Presented, identify
from openbrain.storage.orm import Client
from openbrain.storage.orm.client import SERVER, parse_api_key
from openbrain.storage.stores import Stores

from .observability import logger

CLIENT = "openbrain_client"
KEY_KIND = "openbrain_key_kind"
SESSION_COOKIE = "Session"
API_GATEWAY_SECONDS = 29.0  # a REST API's integration timeout
# What a turn leaves for what follows it: its commit, publishing its events and the response.
DEADLINE_MARGIN_SECONDS = 2.0


def backend() -> Backend:
    """The process's backend (built on the first request that needs it, never at import)."""
    return get_backend()


def stores() -> Stores:
    """The tables, as the process's backend provides them."""
    return get_backend().stores


def current_client(router: BaseRouter, *, server_key: bool = False) -> Client:
    """The Client the request's API key belongs to (`UnauthorizedError` if none); one GetItem per request.

    With `server_key`, a widget key (`obw.`, public in a web page) is refused with `ForbiddenError`: it
    may chat and read its sessions, not read leads or change profiles."""
    client = router.context.get(CLIENT)
    if client is None:
        api_key = router.current_event.headers.get("x-api-key")
        client = authenticate(stores().clients, api_key)
        parsed = parse_api_key(api_key)
        router.append_context(**{CLIENT: client, KEY_KIND: parsed[0] if parsed else None})
        logger.thread_safe_append_keys(client_id=client.client_id)
    if server_key and router.context.get(KEY_KIND) != SERVER:
        raise ForbiddenError("this route needs a server API key (ob.…); a widget key (obw.…) may only chat")
    return client


def presented_identity(headers: Mapping[str, str]) -> Presented:
    """The end-user identity request `headers` (names in any case) carry."""
    lower = {name.lower(): value for name, value in headers.items()}
    return Presented(lower.get("x-user-id"), lower.get("x-user-hash"), lower.get("x-widget-token"))


def end_user(router: BaseRouter, client: Client, presented: Presented) -> EndUser | None:
    """The end user the request speaks for (`services.identity.identify`: `UnauthorizedError` if `presented`
    does not verify, or if the client requires an identity and there is none); call `current_client` first."""
    return identify(client, router.context[KEY_KIND], presented, backend())


def authenticated_client(router: BaseRouter) -> Client | None:
    """The client authenticated earlier in this request, if any (for CORS on every response)."""
    return router.context.get(CLIENT)


def turn_deadline(router: BaseRouter) -> float:
    """When a chat turn of this request must end (a `time.monotonic()` value): before API Gateway gives up
    (29 s) and before the Lambda's remaining time runs out, each less a margin for the commit."""
    remaining = getattr(router.lambda_context, "get_remaining_time_in_millis", None)
    budget = min(API_GATEWAY_SECONDS, remaining() / 1000 if remaining else math.inf)
    return time.monotonic() + budget - DEADLINE_MARGIN_SECONDS


def source_ip(router: BaseRouter) -> str | None:
    """The caller's IP as API Gateway reports it (`requestContext.identity.sourceIp`; ob-serve fills it from
    the socket)."""
    identity = router.current_event.raw_event.get("requestContext", {}).get("identity") or {}
    return identity.get("sourceIp") or None


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
