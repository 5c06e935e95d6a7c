"""`ob-serve`'s loopback Management API (openbrain/local/management.py) with a plain HTTP client, against a real
`LocalStack` holding a real WebSocket: what it answers beyond the push path tests/local/test_websocket.py covers."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from support.api import make_client
from support.backend import installed_backend
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from openbrain.aws.backend import get_backend
from openbrain.core.settings import Settings
from openbrain.local.management import MAX_DATA_BYTES
from openbrain.local.serve import LocalStack
from openbrain.storage.orm import AgentConfig, Connection

pytestmark = pytest.mark.integration
ORIGIN = "https://www.acme.example"


@pytest.fixture
def held() -> Iterator[tuple[ClientConnection, str, http.client.HTTPConnection]]:
    """An acknowledged WebSocket held by ob-serve, its connection id, and an HTTP client of its Management API."""
    with installed_backend(Settings(backend="memory", memory_store=None)):
        _, key = make_client("acme", [ORIGIN])
        AgentConfig("acme", "default", model="offline").save()
        stack = LocalStack(get_backend(), port=0).start()
        try:
            with connect(stack.url.replace("http://", "ws://") + f"/ws?key={key}", open_timeout=10) as ws:
                ws.send(json.dumps({"action": "ack"}))
                assert json.loads(ws.recv(timeout=10)) == {"type": "ack"}
                [record] = Connection.scan(Connection.client_id == "acme")
                endpoint = urlsplit(str(record.endpoint))
                assert endpoint.scheme == "http" and endpoint.hostname == "127.0.0.1"
                api = http.client.HTTPConnection(endpoint.hostname, endpoint.port, timeout=10)
                try:
                    yield ws, record.connection_id, api
                finally:
                    api.close()
        finally:
            stack.stop()


def answer(api: http.client.HTTPConnection, method: str, path: str, body: bytes | None = None) -> tuple[int, str]:
    api.request(method, path, body=body)
    response = api.getresponse()
    response.read()
    return response.status, response.getheader("x-amzn-ErrorType") or ""


def test_posts_reach_the_socket_and_what_api_gateway_refuses_is_refused_alike(
        held: tuple[ClientConnection, str, http.client.HTTPConnection]) -> None:
    ws, connection_id, api = held

    assert answer(api, "POST", f"/@connections/{connection_id}", b'{"type": "hello"}') == (200, "")
    assert json.loads(ws.recv(timeout=10)) == {"type": "hello"}
    assert answer(api, "POST", "/@connections/01UNKNOWNCONNECTION000000", b"{}") == (410, "GoneException")
    assert answer(api, "POST", f"/@connections/{connection_id}", b"\xff\xfe") == (400, "BadRequestException")
    assert answer(api, "POST", "/elsewhere", b"{}") == (404, "NotFoundException")
    assert answer(api, "DELETE", "/@connections/01UNKNOWNCONNECTION000000") == (410, "GoneException")
    too_big = b"x" * (MAX_DATA_BYTES + 1)
    assert answer(api, "POST", f"/@connections/{connection_id}", too_big) == (413, "PayloadTooLargeException")
    # and the connection (HTTP keep-alive) still serves
    assert answer(api, "DELETE", f"/@connections/{connection_id}") == (204, "")
    with pytest.raises(ConnectionClosed) as closed:
        ws.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1000
