"""`LocalStack`: the chat API handler over real HTTP on loopback, in-process on the embedded backend."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from openbrain.aws.backend import Backend
from openbrain.local.serve import (
    MAX_DEMO_KEYS,
    MAX_DEMO_ORIGINS,
    DemoClient,
    LocalStack,
    api_gateway_event,
    demo_origins,
    ensure_demo_client,
)
from openbrain.storage.orm import AgentConfig

pytestmark = pytest.mark.integration


@pytest.fixture
def local(backend: Backend) -> Iterator[tuple[LocalStack, str]]:
    stack = LocalStack(backend, port=0, poll_interval=0.1).start()
    demo = ensure_demo_client(backend.stores, [stack.url], offline=True)
    try:
        yield stack, demo.api_key
    finally:
        stack.stop()


def call(url: str, method: str = "GET", body: Any = None, key: str | None = None) -> tuple[int, dict[str, str], Any]:
    request = urllib.request.Request(url, data=json.dumps(body).encode() if body is not None else None,
                                     method=method, headers={"Content-Type": "application/json"})
    if key:
        request.add_header("x-api-key", key)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read() or b"null")


def test_requests_become_api_gateway_proxy_events() -> None:
    event = api_gateway_event("POST", "/chat?x=1&x=2", [("X-Api-Key", "k"), ("Cookie", "Session=abc")],
                              b'{"message": "hi"}', "127.0.0.1")
    assert (event["httpMethod"], event["path"], event["body"]) == ("POST", "/chat", '{"message": "hi"}')
    assert event["queryStringParameters"] == {"x": "2"}
    assert event["multiValueQueryStringParameters"] == {"x": ["1", "2"]}
    assert event["headers"]["X-Api-Key"] == "k" and not event["isBase64Encoded"]
    assert api_gateway_event("POST", "/", [], b"\xff\xfe", "::1")["isBase64Encoded"]


def test_a_chat_turn_over_local_http_with_the_demo_clients_key(local: tuple[LocalStack, str]) -> None:
    stack, key = local
    assert call(stack.url + "/")[2] == {"status": "ready"}
    status, headers, reply = call(stack.url + "/chat", "POST", {"message": "what is 6 * 7"}, key)
    assert status == 200, reply
    assert reply["message"] == "6 * 7 = 42" and reply["client_id"] == "local"
    assert f"Session={reply['session_id']}" in headers["Set-Cookie"]
    wrong_key = "ob.local.wrong-key-0123456789abcdef0123456789"
    assert call(stack.url + "/chat", "POST", {"message": "hi"}, wrong_key)[0] == 401


def test_the_demo_client_keeps_its_newest_keys_and_a_given_key_keeps_its_widget_key(backend: Backend) -> None:
    from openbrain.storage.orm import Client

    # given: ob-serve started twice with one --api-key
    given = "ob.local.demo-key-0123456789abcdefghijklmnopqrstuv"
    first = ensure_demo_client(backend.stores, ["http://127.0.0.1:8080"], given, offline=True)
    again = ensure_demo_client(backend.stores, ["http://127.0.0.1:8080"], given, offline=True)

    # then: the same keys, stored once
    assert (again.api_key, again.widget_key) == (first.api_key, first.widget_key) == (given, again.widget_key)
    client = Client.get("local")
    assert client.has_api_key(given) and client.has_api_key(first.widget_key)
    assert (client.api_key_count("server"), client.api_key_count("widget")) == (1, 1)
    assert AgentConfig.get("local", "default").model == "offline"

    # when: it starts MAX_DEMO_KEYS times more with new keys
    later = [ensure_demo_client(backend.stores, ["http://127.0.0.1:8080"], offline=True) for _ in range(MAX_DEMO_KEYS)]

    # then: only the newest keys of each kind stay
    client = Client.get("local")
    assert not client.has_api_key(given) and not client.has_api_key(first.widget_key)
    assert all(client.has_api_key(demo.api_key) and client.has_api_key(demo.widget_key) for demo in later)
    assert (client.api_key_count("server"), client.api_key_count("widget")) == (MAX_DEMO_KEYS, MAX_DEMO_KEYS)


def test_ob_serves_starting_at_once_each_keep_their_keys(backend: Backend) -> None:
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    from openbrain.storage.orm import Client

    # given: several ob-serves starting at the same moment on one store
    starting = Barrier(4)

    def start(port: int) -> DemoClient:
        starting.wait()
        return ensure_demo_client(backend.stores, [f"http://127.0.0.1:{port}"], offline=True)

    with ThreadPoolExecutor(4) as pool:
        demos = list(pool.map(start, range(8081, 8085)))

    # then: every one's keys and origin were stored (each saved after reloading what the others saved)
    client = Client.get("local")
    assert all(client.has_api_key(demo.api_key) and client.has_api_key(demo.widget_key) for demo in demos)
    assert sorted(client.allowed_origins) == [f"http://127.0.0.1:{port}" for port in range(8081, 8085)]


def test_a_second_stack_on_the_store_leaves_the_first_ones_keys_and_origin_working(backend: Backend) -> None:
    # given: a stack serving with its demo keys, as `ob-serve` starts one
    stacks = [LocalStack(backend, port=0, poll_interval=0.1) for _ in range(2)]
    demos = []
    try:
        for stack in stacks:  # when: a second one starts on the same store
            demos.append(ensure_demo_client(backend.stores, [stack.url], offline=True))
            stack.start()

        # then: both serve with their own server and widget keys, the widget from its own page's origin
        for stack, demo in zip(stacks, demos, strict=True):
            assert call(stack.url + "/chat", "POST", {"message": "what is 6 * 7"}, demo.api_key)[0] == 200
            request = urllib.request.Request(stack.url + "/chat", data=b'{"message": "hi"}', method="POST", headers={
                "Content-Type": "application/json", "x-api-key": demo.widget_key, "Origin": stack.url})
            with urllib.request.urlopen(request, timeout=30) as response:
                assert response.status == 200
    finally:
        for stack in stacks:
            stack.stop()


def test_the_demo_clients_origins_on_this_machine_are_the_newest_ones_and_every_other_origin_stays() -> None:
    # given: a site's origin, then ob-serve started on more ports than the list keeps
    stored = demo_origins([], ["https://shop.example"])
    ports = range(8000, 8000 + MAX_DEMO_ORIGINS)
    for port in ports:
        stored = demo_origins(stored, [f"http://127.0.0.1:{port}", f"http://localhost:{port}"])

    # when: the oldest port kept is used again
    kept = ports[-MAX_DEMO_ORIGINS // 2]
    stored = demo_origins(stored, [f"http://127.0.0.1:{kept}", f"http://localhost:{kept}"])

    # then: the site's origin, and the newest ports' origins, the port used again last
    newest = [port for port in ports[-MAX_DEMO_ORIGINS // 2:] if port != kept] + [kept]
    assert stored == ["https://shop.example",
                      *(f"http://{host}:{port}" for port in newest for host in ("127.0.0.1", "localhost"))]


def test_the_local_stack_sweeps_outboxes_a_crashed_turn_left(backend: Backend) -> None:
    from datetime import timedelta

    from support.cli import wait_for

    from openbrain.domain.events import LeadCaptured, to_outbox
    from openbrain.storage.orm import ChatSession

    # given: a session whose committed lead event was never published
    session = ChatSession("local", profile_name="default")
    session.outbox = to_outbox([LeadCaptured(client_id="local", session_id=session.session_id,
                                             tool_call_id="call_1", lead_id="01JLEADLEADLEADLEADLEAD000")])
    session.save()

    # when: ob-serve's stack runs (its sweep every `outbox_grace`)
    stack = LocalStack(backend, port=0, poll_interval=0.1, outbox_grace=timedelta(seconds=0.2)).start()
    try:
        wait_for(lambda: ChatSession.get("local", session.session_id).outbox is None, 10, "the outbox to be swept")
    finally:
        stack.stop()

    # then: published (an outbox is cleared only after EventBridge accepted every event; the stack's own poller
    # consumes the queue it reached)
    assert ChatSession.get("local", session.session_id).outbox is None


def test_the_demo_site_embeds_the_widget_for_the_demo_client_under_a_strict_csp(backend: Backend) -> None:
    from openbrain.web import embed_tag

    stack = LocalStack(backend, port=0, poll_interval=0.1)
    stack.demo.widget_key = ensure_demo_client(backend.stores, [stack.url], offline=True).widget_key
    stack.start()
    host = stack.url.removeprefix("http://")
    try:
        with urllib.request.urlopen(stack.url + "/demo", timeout=30) as response:
            page, headers = response.read().decode(), response.headers
        with urllib.request.urlopen(stack.url + "/demo.css", timeout=30) as response:
            css_type = response.headers["Content-Type"]
    finally:
        stack.stop()
    assert embed_tag("/widget.js", stack.demo.widget_key) in page
    assert headers["Content-Type"] == "text/html; charset=utf-8" and css_type == "text/css; charset=utf-8"
    assert headers["Content-Security-Policy"] == (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"connect-src 'self' ws://{host}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
    assert "<style" not in page and "style=" not in page and "<script>" not in page  # nothing inline


def test_without_a_widget_key_the_demo_page_is_not_found(local: tuple[LocalStack, str]) -> None:
    stack, _ = local
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(stack.url + "/demo", timeout=30)
    assert refused.value.code == 404
