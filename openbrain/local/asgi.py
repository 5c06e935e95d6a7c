"""`ob-serve`'s HTTP layer: uvicorn's HTTP/1.1 server and an ASGI app (Starlette's request stream and thread
pool) that turns each request into an API Gateway REST proxy event for the chat API handler.

What API Gateway refuses before the Lambda runs, this layer refuses before the handler runs, every time
with the API's error shape `{"error": {"code", "message"}}` (docs/api.md):

| request | status | code |
| --- | --- | --- |
| malformed (request line, headers, `Content-Length: abc`) | 400 | bad_request |
| head not complete within `header_timeout`, body not within `body_timeout` | 408 | request_timeout |
| declared or streamed body over `max_body_bytes` (counted while reading) | 413 | payload_too_large |
| target over `max_url_bytes` | 414 | uri_too_long |
| a body in another media type than JSON (form data included) | 415 | unsupported_media_type |
| headers over `max_header_bytes` | 431 | headers_too_large |
| more than `max_connections` open connections | 503 | too_many_connections |
| a method the API has no route for (`TRACE`, `PROPFIND`, ...) on a path it serves | 405 (with the path's `Allow`) \
| method_not_allowed |
| such a method on any other path | 404 | not_found |

`POST /chat/stream` (Server-Sent Events) is answered by `openbrain.local.sse` after the same checks.

The handler runs on Starlette's worker threads (anyio's default: 40 at a time), each request with its own
resolver state (`openbrain.api.app.PerRequestRestResolver`), so turns run side by side.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import anyio
import h11
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from openbrain.local import sse
from openbrain.local.demo import PAGES, DemoSite

log = logging.getLogger(__name__)
Invoke = Callable[[dict[str, Any]], dict[str, Any]]
Methods = Callable[[str], list[str]]  # the methods the API answers on a path (`PerRequestRestResolver.methods_at`)
EventBuilder = Callable[[str, str, list[tuple[str, str]], bytes, str], dict[str, Any]]
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
JSON_MEDIA_TYPE = "application/json"


@dataclass(frozen=True)
class Limits:
    """What one request and the server may take (the defaults are API Gateway's or near them)."""

    max_body_bytes: int = 65_536  # OB_MAX_BODY_BYTES
    max_url_bytes: int = 8_192
    max_header_bytes: int = 16_384  # all header lines together
    max_connections: int = 1_000
    header_timeout: float = 10.0  # from connecting (or the previous response) to a complete request head
    body_timeout: float = 30.0  # to receive the whole body
    keep_alive: int = 5  # an idle keep-alive connection is closed after this many seconds


def error_body(code: str, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": message}}).encode()


def raw_error(status: HTTPStatus, code: str, message: str) -> bytes:
    """A complete HTTP/1.1 error response that closes the connection (for the protocol, before any ASGI)."""
    body = error_body(code, message)
    head = (f"HTTP/1.1 {status.value} {status.phrase}\r\ncontent-type: {JSON_MEDIA_TYPE}\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n")
    return head.encode() + body


def protocol_class(limits: Limits) -> type[H11Protocol]:
    """uvicorn's h11 protocol with JSON errors, a connection limit, and a deadline for each request head
    (uvicorn only times out idle keep-alive connections, not a client that connects and sends too little)."""

    class Protocol(H11Protocol):
        _head_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            # No Nagle: a stream's frames are small writes, and uvicorn leaves the accepted sockets of a socket it
            # is handed with Nagle's algorithm on, so a token waited ~40 ms for the client's delayed ACK of the
            # frame before it (measured: the first token 44 ms after turn.started, then every frame at once).
            sock = transport.get_extra_info("socket")
            if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            super().connection_made(transport)
            if len(self.connections) > limits.max_connections:
                transport.write(raw_error(HTTPStatus.SERVICE_UNAVAILABLE, "too_many_connections",
                                          f"the server has {limits.max_connections} connections open; retry later"))
                transport.close()
                return
            self._arm_head_timer()

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancel_head_timer()
            super().connection_lost(exc)

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm_head_timer()

        def _arm_head_timer(self) -> None:
            self._cancel_head_timer()
            self._head_timer = self.loop.call_later(limits.header_timeout, self._head_timed_out)

        def _cancel_head_timer(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_timed_out(self) -> None:
            self._head_timer = None
            if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
                return  # a request is under way: its body has the app's own timeout
            if self.conn.trailing_data[0]:  # part of a request head came: say why it is dropped
                self.transport.write(raw_error(HTTPStatus.REQUEST_TIMEOUT, "request_timeout",
                                               f"the request head did not arrive within {limits.header_timeout:g} s"))
            self.transport.close()

        def send_400_response(self, msg: str) -> None:
            most = self.conn._max_incomplete_event_size  # what h11 was given (uvicorn's config or default)
            if len(self.conn.trailing_data[0]) >= most:
                status, code = HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "headers_too_large"
                message = f"the request line and headers are over {most} bytes"
            else:
                status, code, message = HTTPStatus.BAD_REQUEST, "bad_request", "the request is not valid HTTP/1.1"
            self.transport.write(raw_error(status, code, message))
            self.transport.close()

    return Protocol


class ApiGatewayApp:
    """The ASGI app: checks what API Gateway would, reads the body within the limits, and answers with
    what `invoke(event)` (the Lambda handler) returned."""

    def __init__(self, invoke: Invoke, event: EventBuilder, limits: Limits, methods: Methods,
                 websocket: ASGIApp | None = None, demo: DemoSite | None = None) -> None:
        self.invoke = invoke
        self.methods = methods
        self.event = event
        self.limits = limits
        self.websocket = websocket  # websocket scopes go there (openbrain.local.websocket)
        self.demo = demo  # GET /demo and /demo.css (openbrain.local.demo)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and self.websocket is not None:
            await self.websocket(scope, receive, send)
            return
        if scope["type"] != "http":  # lifespan: nothing to start
            return
        request = Request(scope, receive)
        refusal = self._refusal(request)
        if refusal is not None:
            await self._send(send, request.method, *refusal, allow=self._allowed(scope))
            return
        try:
            body = await self._read_body(request)
        except _Refused as refused:
            await self._send(send, request.method, *refused.args, close=True)
            return
        except ClientDisconnect:
            return
        if request.method == "POST" and scope["path"] == sse.CHAT_STREAM_PATH:  # served here, not by the handler
            await sse.respond(request, body, send)
            return
        if self.demo is not None and request.method in {"GET", "HEAD"} and scope["path"] in PAGES:
            await self.demo.respond(scope["path"], request.method, request.headers.get("host", ""), send)
            return
        target = scope["raw_path"].decode("latin-1")
        if scope["query_string"]:
            target += "?" + scope["query_string"].decode("latin-1")
        headers = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in scope["headers"]]
        client = scope.get("client") or ("", 0)
        event = self.event(request.method, target, headers, body, client[0])
        try:
            response = await run_in_threadpool(self.invoke, event)
        except Exception:  # the handler maps every error itself; this is a last line of defence
            log.exception("the chat API handler raised")
            await self._send(send, request.method, HTTPStatus.INTERNAL_SERVER_ERROR, "internal_error",
                             "something went wrong on our side; please try again")
            return
        await self._reply(send, request.method, response)

    def _refusal(self, request: Request) -> tuple[HTTPStatus, str, str] | None:
        """Why the request is refused before its body is read, if it is."""
        limits = self.limits
        scope = request.scope
        if request.method not in METHODS:
            allowed = self._allowed(scope)
            if not allowed:
                return HTTPStatus.NOT_FOUND, "not_found", "no such route"
            return (HTTPStatus.METHOD_NOT_ALLOWED, "method_not_allowed",
                    f"{request.method[:32]} is not allowed here; use {', '.join(allowed)}")
        if len(scope["raw_path"]) + len(scope["query_string"]) > limits.max_url_bytes:
            return HTTPStatus.REQUEST_URI_TOO_LONG, "uri_too_long", f"the URL is over {limits.max_url_bytes} bytes"
        if sum(len(name) + len(value) + 4 for name, value in scope["headers"]) > limits.max_header_bytes:
            return (HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "headers_too_large",
                    f"the headers are over {limits.max_header_bytes} bytes")
        length = request.headers.get("content-length")
        chunked = "chunked" in request.headers.get("transfer-encoding", "").lower()
        if not (chunked or (length and int(length))):  # h11 has checked that a Content-Length is a number
            return None
        media_type = request.headers.get("content-type", JSON_MEDIA_TYPE).split(";")[0].strip().lower()
        if media_type != JSON_MEDIA_TYPE:
            return HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", "send the body as application/json"
        if length and int(length) > limits.max_body_bytes:
            return (HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "payload_too_large",
                    f"the request body is {length} bytes; the limit is {limits.max_body_bytes} (OB_MAX_BODY_BYTES)")
        return None

    def _allowed(self, scope: Scope) -> list[str]:
        """The methods the request's path answers (a 405's `Allow`): the API's, and what this layer serves itself
        (a preflight of these paths is the API's)."""
        methods = set(self.methods(scope["raw_path"].decode("latin-1")))  # as the API's event carries the path
        if scope["path"] == sse.CHAT_STREAM_PATH:
            methods |= {"POST", "OPTIONS"}
        if self.demo is not None and scope["path"] in PAGES:
            methods |= {"GET", "HEAD", "OPTIONS"}
        return sorted(methods)

    async def _read_body(self, request: Request) -> bytes:
        """The body, refused (413) as soon as it passes the limit, or (408) when it is late."""
        limit = self.limits.max_body_bytes
        chunks: list[bytes] = []
        size = 0
        with anyio.move_on_after(self.limits.body_timeout) as timer:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise _Refused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "payload_too_large",
                                   f"the request body is over the limit of {limit} bytes (OB_MAX_BODY_BYTES)")
                chunks.append(chunk)
        if timer.cancelled_caught:
            raise _Refused(HTTPStatus.REQUEST_TIMEOUT, "request_timeout",
                           f"the request body did not arrive within {self.limits.body_timeout:g} s")
        return b"".join(chunks)

    async def _reply(self, send: Send, method: str, response: dict[str, Any]) -> None:
        raw = response.get("body") or ""
        payload = base64.b64decode(raw) if response.get("isBase64Encoded") else str(raw).encode()
        headers: dict[str, list[str]] = {k: [str(v)] for k, v in (response.get("headers") or {}).items()}
        for name, values in (response.get("multiValueHeaders") or {}).items():
            headers[name] = [str(v) for v in values]
        raw_headers = [(name.encode("latin-1"), value.encode("latin-1"))  # as the handler spelled them
                       for name, values in headers.items() if name.lower() not in {"content-length", "connection"}
                       for value in values]
        raw_headers.append((b"content-length", str(len(payload)).encode()))
        await send({"type": "http.response.start", "status": int(response.get("statusCode", 200)),
                    "headers": raw_headers})
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else payload})

    async def _send(self, send: Send, method: str, status: HTTPStatus, code: str, message: str, *,
                    close: bool = False, allow: list[str] | None = None) -> None:
        """An error answer; `close` when the rest of the body is not worth reading; `allow`: a 405's methods."""
        body = error_body(code, message)
        headers = [(b"content-type", JSON_MEDIA_TYPE.encode()), (b"content-length", str(len(body)).encode())]
        if close:
            headers.append((b"connection", b"close"))
        if status == HTTPStatus.METHOD_NOT_ALLOWED:
            headers.append((b"allow", ", ".join(allow or ()).encode()))
        await send({"type": "http.response.start", "status": status.value, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})


class _Refused(Exception):
    """The request is refused while its body is read: (status, code, message)."""

