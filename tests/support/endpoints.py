"""AWS-compatible endpoints on loopback for tests that run the CLIs against `OB_BACKEND=aws`: moto's own
server, and a DynamoDB endpoint that lacks operations the way dynalite does."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from support.cli import free_port

# any credentials do for these endpoints, but boto3 signs nothing without some
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": "us-east-1"}


@contextlib.contextmanager
def moto_server(log: Path, timeout: float = 30) -> Iterator[str]:
    """`python -m moto.server` (needs moto[server]: flask, flask-cors) on a free loopback port, in a process of
    its own (moto servers in one process share their state); yields its URL."""
    port = free_port()
    with log.open("w") as out:
        server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                  stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            if server.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"moto server did not start: {log.read_text()}")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=10)


# dynalite's answer to an operation it does not implement (its index.js: 400, this body, a CRC32 header)
UNKNOWN_OPERATION = json.dumps({"__type": "com.amazon.coral.service#UnknownOperationException"}).encode()


@contextlib.contextmanager
def lacking(upstream: str, *operations: str) -> Iterator[str]:
    """A DynamoDB endpoint that forwards every request to `upstream` except `operations` (e.g.
    "UpdateTimeToLive", "TransactWriteItems"), which it refuses as dynalite does; yields its URL."""
    target = urlsplit(upstream)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # DynamoDB's JSON protocol: every call is a POST naming its operation
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            operation = self.headers.get("X-Amz-Target", "").rpartition(".")[2]
            if operation in operations:
                self._answer(400, {"Content-Type": self.headers.get("Content-Type", "application/x-amz-json-1.0"),
                                   "x-amz-crc32": str(zlib.crc32(UNKNOWN_OPERATION))}, UNKNOWN_OPERATION)
                return
            connection = http.client.HTTPConnection(target.hostname or "127.0.0.1", target.port, timeout=30)
            try:
                connection.request("POST", self.path, body, dict(self.headers))
                response = connection.getresponse()
                self._answer(response.status, dict(response.getheaders()), response.read())
            finally:
                connection.close()

        def _answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
            self.send_response(status)
            for name, value in headers.items():
                if name.lower() not in {"content-length", "connection", "transfer-encoding", "server", "date"}:
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
