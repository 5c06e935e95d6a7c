"""`ob-serve`'s WebSocket transport: `/ws` speaks the streaming protocol of API Gateway's WebSocket API with the
very same handlers (`openbrain.api.websocket`, docs/api.md, Streaming).

Each connection becomes what API Gateway would make of it: a `$connect` event (the upgrade's headers and query;
a refusal is the handler's HTTP answer, so the upgrade fails with 401 / 403), a `$default` event per frame, a
`$disconnect` event at the end; frames the handler posts go to the socket (`LocalSocket`, the Management API's
stand-in). Frames run on the server's worker threads, each as it arrives, so a chat frame sent while a turn
runs is answered (`conflict`) at once. Two timers do what API Gateway and the sweep do when deployed: the ack
rule (`OB_WS_ACK_SECONDS` after connecting, exactly) and the idle timeout (`OB_WS_IDLE_SECONDS` without a frame
either way). With `--workers N` a connection lives in the worker that accepted it; its record is in the shared
store, with the address of that process's Management API (`openbrain.local.management`) as its `endpoint`, so
a frame pushed from any process (`openbrain.api.websocket.push`) reaches it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from typing import Any
from urllib.parse import parse_qs

import anyio
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

from openbrain.api.websocket import (
    CLOSE_IDLE,
    connect,
    disconnect,
    expire,
    frame_deadline,
    receive,
)
from openbrain.aws.backend import get_backend
from openbrain.aws.connections import ConnectionGoneError
from openbrain.core.ids import new_id
from openbrain.local.management import ManagementServer

log = logging.getLogger(__name__)
WS_PATH = "/ws"
STAGE = "local"
MAX_MESSAGE_BYTES = 131_072  # API Gateway's WebSocket message limit; larger closes with 1009 (too big)


def websocket_event(route: str, connection_id: str, *, domain: str, headers: list[tuple[str, str]] | None = None,
                    query: str = "", body: str | None = None, binary: bool = False,
                    source_ip: str = "") -> dict[str, Any]:
    """The event API Gateway's WebSocket API gives a Lambda proxy integration for `route`."""
    now = int(time.time() * 1000)
    kind = {"$connect": "CONNECT", "$disconnect": "DISCONNECT"}.get(route, "MESSAGE")
    event: dict[str, Any] = {
        "requestContext": {"routeKey": route, "eventType": kind, "connectionId": connection_id,
                           "domainName": domain, "stage": STAGE, "requestId": new_id(), "apiId": "local",
                           "messageDirection": "IN", "requestTimeEpoch": now, "connectedAt": now,
                           "identity": {"sourceIp": source_ip}},
        "isBase64Encoded": binary,
    }
    if route == "$connect":
        single: dict[str, str] = {}
        multi: dict[str, list[str]] = {}
        for name, value in headers or []:
            single[name] = value
            multi.setdefault(name, []).append(value)
        parsed = parse_qs(query, keep_blank_values=True)
        event |= {"headers": single, "multiValueHeaders": multi,
                  "queryStringParameters": {k: v[-1] for k, v in parsed.items()} or None,
                  "multiValueQueryStringParameters": parsed or None}
    elif route == "$default":
        event["requestContext"]["messageId"] = new_id()
        event["body"] = body
    return event


class LocalSocket:
    """The `Socket` of one local connection: frames to the client over the server's event loop."""

    def __init__(self, send: Send, loop: asyncio.AbstractEventLoop) -> None:
        self._send = send
        self._loop = loop
        self.open = True
        self.last_activity = time.monotonic()

    def post(self, connection_id: str, frame: dict[str, Any]) -> None:
        self.send_text(json.dumps(frame))

    def send_text(self, text: str) -> None:
        """Send `text` as one text message (the Management API's posts); `ConnectionGoneError` if closed."""
        self._call({"type": "websocket.send", "text": text})

    def close(self, connection_id: str, code: int, reason: str) -> None:
        try:
            self._call({"type": "websocket.close", "code": code, "reason": reason})
        except ConnectionGoneError:
            return
        self.open = False

    async def _sent(self, message: dict[str, Any]) -> None:
        await self._send(message)

    def _call(self, message: dict[str, Any]) -> None:
        """Send `message` from a worker thread (the handlers run there), waiting until it is sent."""
        if not self.open:
            raise ConnectionGoneError()
        try:
            asyncio.run_coroutine_threadsafe(self._sent(message), self._loop).result()
        except Exception as exc:  # uvicorn's ClientDisconnected, or the connection closing under us
            self.open = False
            raise ConnectionGoneError() from exc
        self.last_activity = time.monotonic()


class WebSocketApp:
    """The ASGI app for websocket scopes (`openbrain.local.asgi.ApiGatewayApp` hands them here); the connections
    it holds are posted to through `management` (started with the first connection, stopped by `close`)."""

    def __init__(self, management: ManagementServer | None = None) -> None:
        self.management = management or ManagementServer()

    def close(self) -> None:
        """Stop the Management API (the server has stopped serving)."""
        self.management.stop()

    async def __call__(self, scope: Scope, receive_message: Receive, send: Send) -> None:
        message = await receive_message()
        if message["type"] != "websocket.connect":
            return
        if scope["path"] != WS_PATH:
            await _deny(send, 404, {"error": {"code": "not_found", "message": f"the WebSocket is at {WS_PATH}"}})
            return
        backend = await run_in_threadpool(get_backend)
        connection_id = new_id()
        headers = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in scope["headers"]]
        domain = next((value for name, value in headers if name.lower() == "host"), "localhost")
        event = websocket_event("$connect", connection_id, domain=domain, headers=headers,
                                query=scope["query_string"].decode("latin-1"),
                                source_ip=(scope.get("client") or ("",))[0])
        management = await run_in_threadpool(self.management.start)
        response = await run_in_threadpool(lambda: connect(event, backend, endpoint=management.url))
        if response["statusCode"] != 200:
            await _deny(send, response["statusCode"], json.loads(response["body"]))
            return
        await send({"type": "websocket.accept",
                    "subprotocol": (response.get("headers") or {}).get("Sec-WebSocket-Protocol")})
        socket = LocalSocket(send, asyncio.get_running_loop())
        management.add(connection_id, socket)
        settings = backend.settings

        def frame(text: str | None, data: bytes | None) -> None:
            body = text if text is not None else base64.b64encode(data or b"").decode()  # as API Gateway does
            receive(websocket_event("$default", connection_id, domain=domain, body=body, binary=text is None),
                    backend, socket, deadline=frame_deadline())

        async def ack_deadline() -> None:
            await anyio.sleep(settings.ws_ack_seconds)
            await run_in_threadpool(expire, connection_id, backend, socket)

        async def idle() -> None:
            while socket.open:
                remaining = socket.last_activity + settings.ws_idle_seconds - time.monotonic()
                if remaining <= 0:
                    await run_in_threadpool(socket.close, connection_id, CLOSE_IDLE, "idle_timeout")
                    return
                await anyio.sleep(remaining)

        try:
            async with anyio.create_task_group() as frames:
                frames.start_soon(ack_deadline)
                frames.start_soon(idle)
                while True:
                    message = await receive_message()
                    if message["type"] == "websocket.disconnect":
                        break
                    socket.last_activity = time.monotonic()
                    frames.start_soon(run_in_threadpool, frame, message.get("text"), message.get("bytes"))
                socket.open = False  # frames still running find it gone and stop
                frames.cancel_scope.cancel()  # the timers; a frame's thread runs to its end
        finally:
            socket.open = False
            management.remove(connection_id)
            await run_in_threadpool(disconnect, websocket_event("$disconnect", connection_id, domain=domain), backend)


async def _deny(send: Send, status: int, body: dict[str, Any]) -> None:
    """Refuse the upgrade with an HTTP answer (ASGI's websocket denial response)."""
    payload = json.dumps(body).encode()
    await send({"type": "websocket.http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]})
    await send({"type": "websocket.http.response.body", "body": payload})
