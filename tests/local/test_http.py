"""`ob-serve`'s HTTP layer over real sockets: what it refuses (always the API's JSON error shape), within what
time, without buffering what it refuses, and that it keeps serving afterwards."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from openbrain.aws.backend import Backend
from openbrain.local.asgi import Limits
from openbrain.local.serve import LocalStack

pytestmark = pytest.mark.integration
LIMITS = Limits(max_body_bytes=65_536, header_timeout=1.0, body_timeout=1.0, max_connections=20)


@pytest.fixture
def stack(backend: Backend) -> Iterator[LocalStack]:
    served = LocalStack(backend, port=0, poll_interval=0.1, limits=LIMITS).start()
    try:
        yield served
    finally:
        served.stop()


def address(stack: LocalStack) -> tuple[str, int]:
    host, port = stack.socket.getsockname()[:2]
    return host, port


def exchange(stack: LocalStack, raw: bytes, timeout: float = 10) -> tuple[int, dict[str, str], Any]:
    """Send `raw` on a new connection; the status, headers and JSON body of the answer."""
    with socket.create_connection(address(stack), timeout=timeout) as conn:
        conn.sendall(raw)
        return read_response(conn)


def read_response(conn: socket.socket) -> tuple[int, dict[str, str], Any]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65_536)
        if not chunk:
            raise AssertionError(f"the connection closed without a response: {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = conn.recv(65_536)
        if not chunk:
            break
        body += chunk
    return int(lines[0].split()[1]), headers, json.loads(body) if body else None


def request(method: str, target: str, headers: dict[str, str] | None = None, body: bytes = b"") -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def assert_json_error(answer: tuple[int, dict[str, str], Any], status: int, code: str) -> None:
    got_status, headers, body = answer
    assert (got_status, body["error"]["code"]) == (status, code), answer
    assert headers["content-type"] == "application/json" and body["error"]["message"]


def still_serving(stack: LocalStack) -> bool:
    status, _, body = exchange(stack, request("GET", "/"))
    return status == 200 and body == {"status": "ready"}


@pytest.mark.parametrize(("raw", "status", "code"), [
    (request("POST", "/chat", {"Content-Length": "abc"}), 400, "bad_request"),
    (b"GARBAGE\r\n\r\n", 400, "bad_request"),
    (request("POST", "/chat", {"Content-Length": str(100 * 2**40), "Content-Type": "application/json"}),
     413, "payload_too_large"),
    (request("POST", "/chat", {"Content-Type": "multipart/form-data; boundary=x", "Content-Length": "6000000"}),
     415, "unsupported_media_type"),
    (request("POST", "/chat", {"Content-Type": "application/x-www-form-urlencoded", "Content-Length": "9"},
             b"message=x"), 415, "unsupported_media_type"),
    (request("PROPFIND", "/"), 405, "method_not_allowed"),
    (request("TRACE", "/"), 405, "method_not_allowed"),
    (request("TRACE", "/no/such/route"), 404, "not_found"),
    (request("GET", "/" + "a" * 9_000), 414, "uri_too_long"),
    (request("GET", "/", {f"X-Pad-{i}": "v" * 1_000 for i in range(17)}), 431, "headers_too_large"),
    (request("GET", "/", {"X-Huge": "v" * 40_000}), 431, "headers_too_large"),
    (request("GET", "/no/such/route"), 404, "not_found"),
])
def test_a_malformed_request_gets_a_json_error_and_the_server_keeps_serving(
        stack: LocalStack, raw: bytes, status: int, code: str) -> None:
    assert_json_error(exchange(stack, raw), status, code)
    assert still_serving(stack)


def test_head_answers_wherever_get_does_with_the_same_headers_and_no_body(stack: LocalStack) -> None:
    # given: a real HTTP client
    conn = http.client.HTTPConnection(*address(stack), timeout=10)
    try:
        for path in ("/widget.js", "/", "/openapi.json", "/demo.css"):
            conn.request("GET", path)
            got = conn.getresponse()
            body = got.read()
            # when
            conn.request("HEAD", path)
            head = conn.getresponse()

            # then: GET's status and headers (its Content-Length too), and no body
            assert head.read() == b"" and body
            assert (head.status, head.getheader("Content-Length")) == (got.status, str(len(body))), path
            assert dict(head.getheaders()).keys() - {"date"} == dict(got.getheaders()).keys() - {"date"}
            assert head.getheader("Content-Type") == got.getheader("Content-Type")

        # and a HEAD where there is no GET is a 405 like any method the path lacks, with a true Allow
        conn.request("HEAD", "/chat")
        refused = conn.getresponse()
        assert (refused.status, refused.getheader("Allow"), refused.read()) == (405, "OPTIONS, POST", b"")
    finally:
        conn.close()


@pytest.mark.parametrize(("path", "allow"), [
    ("/widget.js", "GET, HEAD, OPTIONS"), ("/chat", "OPTIONS, POST"), ("/chat/stream", "OPTIONS, POST"),
    ("/demo", "GET, HEAD, OPTIONS"), ("/sessions/x/schedules/y", "DELETE, OPTIONS"),
])
def test_a_405_names_the_methods_the_path_answers(stack: LocalStack, path: str, allow: str) -> None:
    for method in ("TRACE", "PATCH"):  # one ob-serve refuses itself, one the handler refuses
        if method == "PATCH" and path in {"/chat/stream", "/demo"}:
            continue  # the handler does not serve ob-serve's own paths (404)
        status, headers, body = exchange(stack, request(method, path))
        assert (status, headers.get("allow"), body["error"]["code"]) == (405, allow, "method_not_allowed"), method
        assert body["error"]["message"] == f"{method} is not allowed here; use {allow}"


def test_a_body_shorter_than_its_content_length_times_out(stack: LocalStack) -> None:
    started = time.monotonic()
    answer = exchange(stack, request("POST", "/chat", {"Content-Type": "application/json",
                                                       "Content-Length": "100"}, b'{"message"'))
    assert_json_error(answer, 408, "request_timeout")
    assert time.monotonic() - started < LIMITS.body_timeout + 3
    assert still_serving(stack)


def test_half_open_connections_are_closed_after_the_head_timeout(stack: LocalStack) -> None:
    # given: a connection that sends nothing, and one that sends half a request head
    with socket.create_connection(address(stack), timeout=10) as silent, \
            socket.create_connection(address(stack), timeout=10) as partial:
        partial.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        started = time.monotonic()

        # then: both are closed within the head timeout; the half request is told why
        assert silent.recv(1) == b""
        assert_json_error(read_response(partial), 408, "request_timeout")
        assert time.monotonic() - started < LIMITS.header_timeout + 3
    assert still_serving(stack)


def test_connections_over_the_limit_are_refused_with_503(stack: LocalStack) -> None:
    held = [socket.create_connection(address(stack), timeout=10) for _ in range(LIMITS.max_connections)]
    try:
        time.sleep(0.2)
        assert_json_error(exchange(stack, request("GET", "/")), 503, "too_many_connections")
    finally:
        for conn in held:
            conn.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not still_serving_quietly(stack):
        time.sleep(0.1)
    assert still_serving(stack)


def still_serving_quietly(stack: LocalStack) -> bool:
    try:
        return still_serving(stack)
    except (AssertionError, KeyError, OSError):
        return False


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_a_200_mb_chunked_upload_is_refused_while_reading_without_buffering_it(stack: LocalStack) -> None:
    # given: a client streaming 200 MB of JSON in 1 MB chunks (the server runs in this process)
    chunk = b"%x\r\n%s\r\n" % (2**20, b" " * 2**20)
    before = rss_bytes()
    answer: list[tuple[int, dict[str, str], Any]] = []
    sent = 0

    def upload() -> None:
        nonlocal sent
        with socket.create_connection(address(stack), timeout=10) as conn:
            conn.sendall(request("POST", "/chat", {"Content-Type": "application/json",
                                                   "Transfer-Encoding": "chunked"}))
            try:
                for _ in range(200):
                    conn.sendall(chunk)
                    sent += 1
            except OSError:  # the server answered and closed: the rest is never sent
                pass
            answer.append(read_response(conn))

    # when
    client = threading.Thread(target=upload)
    client.start()
    client.join(timeout=60)

    # then: 413 long before the 200 MB, and the process grew by a few MB at most
    assert answer, "no answer to the upload"
    assert_json_error(answer[0], 413, "payload_too_large")
    assert sent < 200
    assert rss_bytes() - before < 8 * 2**20
    assert still_serving(stack)


@pytest.mark.e2e
def test_ob_serve_on_a_busy_port_is_one_line_and_exit_1(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [str(Path(sys.executable).parent / "ob-serve"), "--port", str(port)], capture_output=True, text=True,
            timeout=120, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "OB_MEMORY_STORE": "none",
                              "PYTHONPATH": os.environ.get("PYTHONPATH", "")},
        )

    assert result.returncode == 1, result
    assert result.stderr.strip() == f"ob-serve: error: cannot listen on 127.0.0.1:{port}: the port is in use"
    assert "Traceback" not in result.stderr
