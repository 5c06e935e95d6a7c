"""A chat turn as a stream of events: what the streaming transports share (docs/api.md, Streaming).

The WebSocket protocol (API Gateway's and `ob-serve`'s `/ws`) and SSE (`ob-serve`'s `POST /chat/stream`) run
a turn the same way, and by the HTTP API's rules:

- `authorize(api_key, origin, backend)`: the key's client (`UnauthorizedError` as over HTTP). A request that
  carries an `Origin` (every browser sends one, on a WebSocket too, where no CORS protects the reply) must come
  from one of the client's `allowed_origins` (`ForbiddenError`); one without (curl, a server) is not checked,
  as over HTTP.
- `chat_stream(client, body, call, backend)`: the body read as over HTTP (the same size, depth and number
  limits, the same `ChatMessage`), then the turn's events (`conversation/chat.py`) with the rules a public key
  lives by (`services/chat.py`). It never raises: a failure is the stream's last event,
  `{"type": "error", "code", "message"}` with the HTTP API's code (`routes/errors.py`), after `turn.started`
  when the turn had started.
- `coalesce(events, interval)`: consecutive `token` events of one step merged so that at most one goes out per
  `interval` (the first at once): over API Gateway each frame is an HTTPS call.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from openbrain.conversation.chat import ChatMessage
from openbrain.core.errors import ForbiddenError, InvalidInputError
from openbrain.services.auth import authenticate
from openbrain.services.chat import ChatCall, chat_events_as_client

from .body import bounded_json
from .routes.errors import INVALID_JSON_MESSAGE, InvalidJsonError, error_event

if TYPE_CHECKING:
    from openbrain.aws.backend import Backend
    from openbrain.conversation.agents.runner import TurnEvent
    from openbrain.storage.orm import Client

TOKEN_INTERVAL_SECONDS = 0.05  # at most one token frame per this much streaming


def authorize(api_key: str | None, origin: str | None, backend: Backend) -> Client:
    """The client of `api_key`, if `origin` (when given) is one it allows (module docstring)."""
    client = authenticate(backend.stores.clients, api_key)
    if origin and not client.allows_origin(origin):
        raise ForbiddenError("this origin is not one of the client's allowed origins")
    return client


def chat_stream(client: Client, body: str | dict[str, Any], call: ChatCall, backend: Backend, *,
                tokens: bool = True) -> Iterator[TurnEvent]:
    """The events of the turn `body` (JSON text, or already parsed) asks for, ending in `error` on a failure
    (module docstring)."""
    try:
        try:
            data = bounded_json(body) if isinstance(body, str) else body
        except json.JSONDecodeError as exc:
            raise InvalidJsonError(INVALID_JSON_MESSAGE) from exc
        if not isinstance(data, dict):
            raise InvalidInputError("body: the request must be a JSON object")
        request = ChatMessage.parse(data)
        yield from chat_events_as_client(client, request, call, backend, tokens=tokens)
    except Exception as exc:  # every failure becomes the error event, mapped and logged as over HTTP
        yield error_event(exc)


def coalesce(events: Iterable[TurnEvent], interval: float = TOKEN_INTERVAL_SECONDS,
             clock: Callable[[], float] = time.monotonic) -> Iterator[TurnEvent]:
    """`events` with consecutive `token` events of one step merged: a token goes out at once when none has
    for `interval`, else it waits for the next event (a later token, or whatever ends the step), which
    carries it. So a reply of T seconds makes at most T / interval + 2 token events (the first at once, one per
    interval, what the last interval held when the step ends), and the text is never late by more than the gap
    to the model's next chunk."""
    pending: TurnEvent | None = None
    last_sent = -float("inf")
    for event in events:
        if event["type"] == "token":
            if pending is not None and pending["step"] == event["step"]:
                pending = {**pending, "text": pending["text"] + event["text"]}
            else:
                if pending is not None:
                    yield pending
                pending = event
            now = clock()
            if now - last_sent >= interval:
                yield pending
                pending, last_sent = None, now
            continue
        if pending is not None:
            yield pending
            pending = None
        yield event
    if pending is not None:
        yield pending
