"""`ob-serve`'s `POST /chat/stream`: a chat turn as Server-Sent Events (docs/api.md, "SSE").

The body, the key, the end-user identity headers and the rules are `POST /chat`'s; the events are the WebSocket's frames
(`openbrain.api.streaming`: `authorize`, `chat_stream`, `coalesce`), each sent as

    event: <type>
    data: <the event as JSON, its "type" included>

and the stream ends after `turn.finished` or `error`. `asgi.ApiGatewayApp` hands the request over after its
own checks (size, media type, URL and header limits) and after reading the body.

- The turn runs on a worker thread (anyio's, as the HTTP API's handler does), which hands each event to the
  event loop as it comes; the loop is never blocked.
- The response starts only once the first event is known: an `error` then (a wrong key or an end-user
  identity that does not verify 401, a foreign Origin 403, a bad body 400/413/422, another client's or user's
  session 404, ...) is a JSON error response with `POST /chat`'s status and body, and `turn.started` gives
  the session id the `Session` cookie is set to.
  An error after that is the stream's last event.
- A client that goes away mid-stream does not stop the turn: the thread runs it to its end (committed, or
  not at all), and the request ends with it.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio
import anyio.from_thread
import anyio.to_thread
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.types import Send

from openbrain.api.context import API_GATEWAY_SECONDS, DEADLINE_MARGIN_SECONDS, SESSION_COOKIE, presented_identity
from openbrain.api.cors import response_cors_headers
from openbrain.api.routes.chat import session_cookie
from openbrain.api.routes.errors import INVALID_JSON_MESSAGE, InvalidJsonError, error_event, status_of_code
from openbrain.api.streaming import authorize, chat_stream, coalesce
from openbrain.services.chat import ChatCall
from openbrain.services.identity import identify
from openbrain.storage.orm.client import WIDGET, parse_api_key

if TYPE_CHECKING:
    from openbrain.aws.backend import Backend
    from openbrain.conversation.agents.runner import TurnEvent
    from openbrain.services.identity import Presented
    from openbrain.storage.orm import Client

CHAT_STREAM_PATH = "/chat/stream"
MEDIA_TYPE = "text/event-stream"


def frame(event: TurnEvent) -> bytes:
    """One event as SSE: `event: <type>`, `data: <JSON>`, a blank line (JSON text holds no line break)."""
    return f"event: {event['type']}\ndata: {json.dumps(event, ensure_ascii=False)}\n\n".encode()


@dataclass
class _Turn:
    """One request's turn, run by `run` on a worker thread."""

    api_key: str | None
    origin: str | None
    body: bytes
    call: ChatCall
    presented: Presented  # the end-user identity the headers carry, checked with the key
    client: Client | None = None  # set once the key is checked

    def run(self, events: MemoryObjectSendStream[TurnEvent]) -> None:
        """Run the turn to its end, sending each event to the loop; once the response is gone (the client left),
        the rest of the turn still runs, unsent."""
        listening = True
        with events:
            for event in self._events():
                if listening:
                    try:
                        anyio.from_thread.run_sync(events.send_nowait, event)
                    except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                        listening = False

    def _events(self) -> Iterator[TurnEvent]:
        from openbrain.aws.backend import get_backend

        try:
            backend: Backend = get_backend()
            self.client = authorize(self.api_key, self.origin, backend)
            self.call.user = identify(self.client, self.call.key_kind, self.presented, backend)
            body = self.body.decode()
        except UnicodeDecodeError:
            yield error_event(InvalidJsonError(INVALID_JSON_MESSAGE))
            return
        except Exception as exc:  # a wrong key, origin or end-user identity, worded as over HTTP
            yield error_event(exc)
            return
        yield from coalesce(chat_stream(self.client, body, self.call, backend))


async def respond(request: Request, body: bytes, send: Send) -> None:
    """Answer `POST /chat/stream`, whose `body` has been read."""
    headers = request.headers
    parsed = parse_api_key(headers.get("x-api-key"))
    call = ChatCall(request.cookies.get(SESSION_COOKIE), None,
                    time.monotonic() + API_GATEWAY_SECONDS - DEADLINE_MARGIN_SECONDS,  # as POST /chat's turn
                    end_user=request.client.host if request.client else None,  # as ob-serve's sourceIp
                    key_kind=parsed[0] if parsed else WIDGET)
    turn = _Turn(headers.get("x-api-key"), headers.get("origin"), body, call, presented_identity(headers))
    sender, events = anyio.create_memory_object_stream["TurnEvent"](math.inf)
    async with anyio.create_task_group() as tasks, events:
        tasks.start_soon(anyio.to_thread.run_sync, turn.run, sender)
        first = await events.receive()  # chat_stream always yields one
        cors = response_cors_headers(turn.origin, turn.client)
        if first["type"] == "error":
            retry = {"Retry-After": str(first["retry_after"])} if "retry_after" in first else {}
            response: JSONResponse | StreamingResponse = JSONResponse(
                {"error": {"code": first["code"], "message": first["message"]}},
                status_code=status_of_code(first["code"]), headers={**cors, **retry})
        else:
            response = StreamingResponse(
                _frames(first, events), media_type=MEDIA_TYPE,
                headers={**cors, "Cache-Control": "no-cache", "X-Accel-Buffering": "no",
                         "Set-Cookie": str(session_cookie(first["session_id"]))})
        await response(request.scope, request.receive, send)


async def _frames(first: TurnEvent, rest: MemoryObjectReceiveStream[TurnEvent]) -> AsyncIterator[bytes]:
    yield frame(first)
    async for event in rest:
        yield frame(event)
