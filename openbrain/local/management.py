"""`ob-serve`'s Management API: what API Gateway's `@connections` API is to a deployed stage, on loopback, for
the WebSockets one process holds (openbrain/local/websocket.py).

A frame from outside any turn (a scheduled message: `openbrain.api.websocket.push`) may come from another
process than the one holding the socket (`ob-serve --workers N`, or the parent's scheduler thread), so each
process that serves WebSockets answers, on `127.0.0.1` and a port of its own:

- `POST /@connections/{id}`: the body (a frame, JSON text) sent to the connection as a text message; 410
  (`GoneException`, as API Gateway answers) when the connection is not held here or has closed; 413
  (`PayloadTooLargeException`) over API Gateway's 128 KB message limit; 400 for a body that is not UTF-8;
- `DELETE /@connections/{id}`: the connection closed (1000), 410 when not held here.

Its URL is stored as each connection's `endpoint` on `$connect`, so a push reaches the socket with the very
same boto3 `apigatewaymanagementapi` client as on AWS. It checks no signature: it listens on loopback only,
like the rest of `ob-serve`'s defaults, and a connection id is a fresh ULID (80 random bits).

The standard library's ThreadingHTTPServer, not a second uvicorn: these are a few short requests whose work is
handing a frame to the event loop that owns the socket (`LocalSocket`), which blocks a thread anyway.
"""

from __future__ import annotations

import json
import logging
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING
from urllib.parse import unquote

from openbrain.aws.connections import ConnectionGoneError

if TYPE_CHECKING:
    from openbrain.local.websocket import LocalSocket

log = logging.getLogger(__name__)
PREFIX = "/@connections/"
MAX_DATA_BYTES = 131_072  # API Gateway's WebSocket message limit (PostToConnection's Data)
CLOSE_NORMAL = 1000


class ManagementServer:
    """The Management API of the connections this process holds: `add` / `remove` them, `start`, `stop`."""

    def __init__(self) -> None:
        self._sockets: dict[str, LocalSocket] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The endpoint a connection is stored with (`http://127.0.0.1:<port>`)."""
        assert self._server is not None, "start() it first"
        return f"http://127.0.0.1:{self._server.server_port}"

    @property
    def started(self) -> bool:
        return self._server is not None

    def start(self) -> ManagementServer:
        """Listen on a free loopback port and serve in a thread (idempotent)."""
        with self._lock:
            if self._server is None:
                self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
                self._server.daemon_threads = True
                self._thread = threading.Thread(target=self._server.serve_forever, name="ob-serve-management",
                                                daemon=True)
                self._thread.start()
        return self

    def stop(self) -> None:
        with self._lock:
            server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()

    def add(self, connection_id: str, socket: LocalSocket) -> None:
        with self._lock:
            self._sockets[connection_id] = socket

    def remove(self, connection_id: str) -> None:
        with self._lock:
            self._sockets.pop(connection_id, None)

    def socket(self, connection_id: str) -> LocalSocket | None:
        with self._lock:
            return self._sockets.get(connection_id)


def _handler(management: ManagementServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as boto3's connection pool expects

        def do_POST(self) -> None:
            socket, connection_id = self._connection()
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_DATA_BYTES:
                while length > 0 and (chunk := self.rfile.read(min(length, 65_536))):  # read, not kept
                    length -= len(chunk)
                self._answer(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "PayloadTooLargeException",
                             f"the data is {length} bytes; the limit is {MAX_DATA_BYTES}")
                return
            data = self.rfile.read(length)
            if connection_id is None:
                self._answer(HTTPStatus.NOT_FOUND, "NotFoundException", "no such route")
                return
            try:
                text = data.decode()
            except UnicodeDecodeError:
                self._answer(HTTPStatus.BAD_REQUEST, "BadRequestException", "frames are UTF-8 (JSON) text")
                return
            try:
                if socket is None:
                    raise ConnectionGoneError(connection_id)
                socket.send_text(text)
            except ConnectionGoneError:
                self._answer(HTTPStatus.GONE, "GoneException", None)
                return
            self._answer(HTTPStatus.OK, None, None)

        def do_DELETE(self) -> None:
            socket, connection_id = self._connection()
            if connection_id is None:
                self._answer(HTTPStatus.NOT_FOUND, "NotFoundException", "no such route")
            elif socket is None or not socket.open:
                self._answer(HTTPStatus.GONE, "GoneException", None)
            else:
                socket.close(connection_id, CLOSE_NORMAL, "")
                self._answer(HTTPStatus.NO_CONTENT, None, None)

        def _connection(self) -> tuple[LocalSocket | None, str | None]:
            if not self.path.startswith(PREFIX) or "/" in self.path[len(PREFIX):]:
                return None, None
            connection_id = unquote(self.path[len(PREFIX):])
            return management.socket(connection_id), connection_id

        def _answer(self, status: HTTPStatus, error: str | None, message: str | None) -> None:
            body = json.dumps({"message": message}).encode() if error else b""
            self.send_response(status)
            if error:
                self.send_header("x-amzn-ErrorType", error)
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            log.debug("management API: " + format, *args)

    return Handler
