"""`ob-serve`'s `POST /chat/stream`: a real SSE client (httpx, reading line by line) against a real `ob-serve`,
its model a real `ChatOpenAI` streaming from the fake OpenAI server over time."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.api import Tenant, make_client
from support.backend import installed_backend
from support.cli import wait_for
from support.fake_openai import FakeOpenAI, RecordedRequest, Reply

from openbrain.core.settings import Settings
from openbrain.local.serve import LocalStack, ensure_demo_client
from openbrain.storage.orm import AgentConfig

pytestmark = pytest.mark.integration
REPLY = "Tokyo is nine hours ahead of London, give or take daylight saving."
CHUNK_SECONDS = 0.08  # between two of the fake model's chunks: above the 50 ms coalescing, so each is an event


@dataclass
class Served:
    url: str
    acme: Tenant
    globex: Tenant
    widget_key: str  # acme's
    model: FakeOpenAI


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)

    def answer(request: RecordedRequest) -> Reply:
        return Reply(REPLY, chunk_size=6, chunk_interval=CHUNK_SECONDS)

    with FakeOpenAI() as model, installed_backend(Settings(
            backend="memory", memory_store=None, openai_base_url=model.base_url, openai_api_key="sk-test")) as backend:
        model.always(answer)
        tenants = []
        for client_id in ("acme", "globex"):
            origin = f"https://{client_id}.example"
            _, key = make_client(client_id, [origin])
            AgentConfig(client_id, "default", model="openai:gpt-test").save()
            tenants.append(Tenant(client_id, key, origin))
        from openbrain.storage.orm import Client
        from openbrain.storage.orm.client import WIDGET

        acme = Client.get("acme")
        widget_key = acme.add_api_key(WIDGET)
        acme.save()
        stack = LocalStack(backend, port=0, poll_interval=0.05).start()
        try:
            yield Served(stack.url, *tenants, widget_key, model)
        finally:
            stack.stop()


@dataclass
class Stream:
    status: int
    headers: httpx.Headers
    events: list[tuple[float, dict[str, Any]]]  # (when it arrived, the event)
    error: Any = None  # the JSON body of a refusal

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [event for _, event in self.events if event["type"] == kind]

    @property
    def types(self) -> list[str]:
        return [event["type"] for _, event in self.events]


def parse(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    """Server-Sent Events: `event:` and `data:` lines, an event ended by a blank line; the event's type
    and its data's `type` agree."""
    kind, data = None, None
    for line in lines:
        if line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("data: "):
            data = json.loads(line[6:])
        elif line == "" and data is not None:
            assert data["type"] == kind, (kind, data)
            yield data
            kind, data = None, None


def stream(url: str, key: str | None, body: Any, *, origin: str | None = None, cookie: str | None = None,
           content: bytes | None = None, content_type: str = "application/json",
           extra: dict[str, str] | None = None) -> Stream:
    headers = {"content-type": content_type, **({"x-api-key": key} if key else {}),
               **({"origin": origin} if origin else {}), **({"cookie": f"Session={cookie}"} if cookie else {}),
               **(extra or {})}
    with httpx.Client(timeout=30) as http, http.stream(
            "POST", url + "/chat/stream", headers=headers,
            content=content if content is not None else json.dumps(body).encode()) as response:
        if response.headers.get("content-type", "").startswith("application/json"):
            return Stream(response.status_code, response.headers, [], json.loads(response.read()))
        events = [(time.monotonic(), event) for event in parse(response.iter_lines())]
        return Stream(response.status_code, response.headers, events)


def session(served: Served, session_id: str) -> dict[str, Any]:
    """The session as `GET /sessions/{id}` shows it to acme ({} while it does not exist)."""
    response = httpx.get(f"{served.url}/sessions/{session_id}", headers={"x-api-key": served.acme.key})
    return response.json() if response.status_code == 200 else {}


def stored_reply(served: Served, session_id: str) -> str:
    return str([m for m in session(served, session_id)["messages"] if m["role"] == "assistant"][-1]["content"])


def test_tokens_arrive_as_the_model_streams_them_and_add_up_to_the_stored_reply(served: Served) -> None:
    # when
    got = stream(served.url, served.acme.key, {"message": "what time is it in Tokyo?"}, origin=served.acme.origin)

    # then: SSE, several token events spread over the model's streaming, then the stored reply
    assert got.status == 200, got.error
    assert got.headers["content-type"].startswith("text/event-stream")
    assert got.types[0] == "turn.started" and got.types[-2:] == ["message", "turn.finished"]
    tokens = [(when, event) for when, event in got.events if event["type"] == "token"]
    assert len(tokens) >= 5, got.types
    assert tokens[-1][0] - tokens[0][0] >= 3 * CHUNK_SECONDS  # delivered as they came, not at the end
    [message] = got.of_type("message")
    last_step = max(event["step"] for _, event in tokens)
    assert "".join(event["text"] for _, event in tokens if event["step"] == last_step) == message["text"] == REPLY
    session_id = got.of_type("turn.started")[0]["session_id"]
    assert stored_reply(served, session_id) == REPLY
    # and: CORS for the client's own origin, and the session as a cookie
    assert got.headers["access-control-allow-origin"] == served.acme.origin
    assert got.headers["set-cookie"].startswith(f"Session={session_id}; Path=/; HttpOnly; Secure")


def test_the_session_cookie_continues_the_session(served: Served) -> None:
    first = stream(served.url, served.acme.key, {"message": "hello"})
    session_id = first.of_type("turn.started")[0]["session_id"]

    again = stream(served.url, served.acme.key, {"message": "and again"}, cookie=session_id)

    [started] = again.of_type("turn.started")
    assert (started["session_id"], started["turn"]) == (session_id, 2)


def test_a_widget_key_may_stream_a_turn(served: Served) -> None:
    got = stream(served.url, served.widget_key, {"message": "hi"}, origin=served.acme.origin)

    assert got.status == 200 and got.of_type("message")[0]["text"] == REPLY


@pytest.mark.parametrize(("case", "status", "code"), [
    ("wrong key", 401, "unauthorized"),
    ("no key", 401, "unauthorized"),
    ("foreign origin", 403, "forbidden"),
    ("another client's session", 404, "not_found"),
    ("another client's id", 403, "forbidden"),
    ("not JSON", 400, "invalid_json"),
    ("not UTF-8", 400, "invalid_json"),
    ("not an object", 422, "invalid_input"),
    ("a bad field", 422, "invalid_input"),
    ("a server-only override", 403, "forbidden"),
    ("an unknown time zone", 422, "invalid_input"),
    ("form data", 415, "unsupported_media_type"),
    ("too large", 413, "payload_too_large"),
])
def test_a_refusal_before_the_stream_is_a_json_error_with_the_http_apis_status(
        served: Served, case: str, status: int, code: str) -> None:
    # given
    acme, body = served.acme, {"message": "hi"}
    key, origin, content, content_type = acme.key, acme.origin, None, "application/json"
    if case == "wrong key":
        key = "ob.acme.wrong-key-0123456789abcdef0123456789"
    elif case == "no key":
        key = None
    elif case == "foreign origin":
        origin = served.globex.origin
    elif case == "another client's session":
        theirs = stream(served.url, served.globex.key, {"message": "hi"}).of_type("turn.started")[0]["session_id"]
        body = {"sessionId": theirs, "message": "hi"}
    elif case == "another client's id":
        body = {"clientId": "globex", "message": "hi"}
    elif case == "not JSON":
        content = b'{"message": '
    elif case == "not UTF-8":
        content = b'{"message": "\xff"}'
    elif case == "not an object":
        content = b"[1, 2]"
    elif case == "a bad field":
        body = {"message": "hi", "reset": "yes"}
    elif case == "an unknown time zone":
        body = {"message": "dps u tomorrow evening\nWater", "context": {"timezone": "Mars/Base"}}
    elif case == "a server-only override":
        body = {"message": "hi", "agentConfigOverrides": {"model": "offline"}}
    elif case == "form data":
        content, content_type = b"message=hi", "application/x-www-form-urlencoded"
    elif case == "too large":
        content = json.dumps({"message": "x" * 70_000}).encode()

    # when
    got = stream(served.url, key, body, origin=origin, content=content, content_type=content_type)

    # then
    assert (got.status, got.error["error"]["code"]) == (status, code), got.error
    assert not got.events
    # the client's own origin may read the refusal once its key is known (as on POST /chat)
    authenticated = case not in {"wrong key", "no key", "foreign origin", "form data", "too large"}
    assert got.headers.get("access-control-allow-origin") == (acme.origin if authenticated else None)
    # and the server keeps serving
    assert stream(served.url, acme.key, {"message": "still there?"}).status == 200


def test_a_widget_key_over_its_rate_limit_gets_429_with_retry_after_and_a_server_key_streams_on(
        served: Served) -> None:
    from openbrain.aws.backend import get_backend
    from openbrain.services.clients import set_limits

    set_limits(get_backend().stores, "acme", {"user_burst": 1})
    assert stream(served.url, served.widget_key, {"reset": True}).status == 200

    refused = stream(served.url, served.widget_key, {"reset": True}, origin=served.acme.origin)

    assert (refused.status, refused.error["error"]["code"]) == (429, "rate_limited")
    assert 1 <= int(refused.headers["retry-after"]) <= 10
    assert refused.headers["access-control-allow-origin"] == served.acme.origin
    assert stream(served.url, served.acme.key, {"reset": True}).status == 200  # the client's own server is not


def test_a_dps_message_streams_its_confirmation_and_the_schedule_routes_list_and_cancel_it(served: Served) -> None:
    # given: a widget visitor's session
    first = stream(served.url, served.widget_key, {"message": "hi"}, origin=served.acme.origin)
    session_id = first.of_type("turn.started")[0]["session_id"]
    calls = len(served.model.requests)

    # when: a dps command on the stream, and one not understood
    got = stream(served.url, served.widget_key, {"message": "dps c tomorrow at 9am\n\nAsk me about my plans."},
                 cookie=session_id)
    refused = stream(served.url, served.widget_key, {"message": "dps c someday\nhi"}, cookie=session_id)

    # then: the confirmation streams as a reply would, and no model ran
    assert got.status == 200, got.error
    assert got.types == ["turn.started", "message", "turn.finished"]
    assert got.of_type("turn.finished")[0]["model"] == "dps" and len(served.model.requests) == calls
    # the one not understood is refused before the stream, as POST /chat refuses it
    assert (refused.status, refused.error["error"]["code"]) == (422, "invalid_input") and not refused.events
    # and over ob-serve's HTTP API the widget's key lists the message and cancels it, once
    routes = f"{served.url}/sessions/{session_id}/schedules"
    headers = {"x-api-key": served.widget_key}
    [waiting] = httpx.get(routes, headers=headers).json()["schedules"]
    assert waiting["schedule_id"] in got.of_type("message")[0]["text"]
    assert (waiting["recipient"], waiting["prompt"]) == ("chatbot", "Ask me about my plans.")
    cancelled = httpx.delete(f"{routes}/{waiting['schedule_id']}", headers=headers)
    assert cancelled.status_code == 200 and cancelled.json() == waiting
    assert httpx.delete(f"{routes}/{waiting['schedule_id']}", headers=headers).status_code == 404
    assert httpx.get(routes, headers={"x-api-key": served.globex.key}).status_code == 404


def test_a_failure_once_streaming_is_the_streams_last_event(served: Served) -> None:
    # given: the model provider refuses the turn
    served.model.always(Reply(status=400, error_message="the provider says no"))

    # when
    got = stream(served.url, served.acme.key, {"message": "hi"})

    # then: the stream started (the session is known), and ends in the HTTP API's error
    assert got.status == 200
    assert got.types == ["turn.started", "error"]
    assert got.of_type("error")[0]["code"] == "upstream_error"


def test_a_preflight_for_the_stream_allows_the_clients_origin(served: Served) -> None:
    response = httpx.options(served.url + "/chat/stream", headers={
        "origin": served.acme.origin, "access-control-request-method": "POST",
        "access-control-request-headers": "content-type,x-api-key"})

    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == served.acme.origin
    assert "POST" in response.headers["access-control-allow-methods"]


def test_a_client_that_leaves_mid_stream_leaves_a_committed_session_and_a_serving_server(served: Served) -> None:
    # given: a stream read up to its first token
    with httpx.Client(timeout=30) as http, http.stream(
            "POST", served.url + "/chat/stream", headers={"x-api-key": served.acme.key},
            json={"message": "hello"}) as response:
        events = parse(response.iter_lines())
        session_id = next(events)["session_id"]
        assert next(events)["type"] == "token"
    # when: the client has closed the connection (leaving the with)

    # then: the turn still ends, committed as a whole
    wait_for(lambda: session(served, session_id).get("turn_count") == 1, 20, "the turn to be committed")
    assert stored_reply(served, session_id) == REPLY
    # and the server still serves, the next turn of that session included
    again = stream(served.url, served.acme.key, {"sessionId": session_id, "message": "still there?"})
    assert again.of_type("turn.started")[0]["turn"] == 2 and again.types[-1] == "turn.finished"


def test_the_event_loop_answers_while_a_turn_streams(served: Served) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        streaming = pool.submit(stream, served.url, served.acme.key, {"message": "take your time"})
        time.sleep(0.3)  # the turn is under way
        started = time.monotonic()
        assert httpx.get(served.url + "/").json() == {"status": "ready"}
        assert time.monotonic() - started < 0.5
        assert not streaming.done()
        assert streaming.result().types[-1] == "turn.finished"


def test_the_python_snippet_in_docs_api_md_prints_the_reply_as_it_streams(
        served: Served, capsys: pytest.CaptureFixture[str]) -> None:
    # given: ob-serve as the docs run it: the demo client with the README's key
    from openbrain.aws.backend import get_backend

    text = (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text()
    section = text.split("### SSE", 1)[1]
    snippet = section.split("```python\n", 1)[1].split("```", 1)[0]
    key = snippet.split('KEY = "', 1)[1].split('"', 1)[0]
    ensure_demo_client(get_backend().stores, [], key)
    AgentConfig("local", "default", model="openai:gpt-test").save()

    # when: the documentation's own example, pointed at this server
    exec(snippet.replace("http://127.0.0.1:8080", served.url), {})

    # then
    assert capsys.readouterr().out == REPLY + "\n"



# ------------------------------------------------------------------------------------------------ end-user identity
def test_the_stream_verifies_the_end_user_as_post_chat_does(served: Served) -> None:
    import hashlib
    import hmac

    import jwt

    from openbrain.aws.backend import get_backend
    from openbrain.core.clock import utcnow
    from openbrain.services.identity import mint_token, require_identity, rotate_identity_secret
    from openbrain.storage.orm import ChatSession

    backend = get_backend()
    secret = rotate_identity_secret(backend, "acme")[1]

    def signed(user_id: str) -> dict[str, str]:
        digest = hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()
        return {"x-user-id": user_id, "x-user-hash": digest}

    def token(key: str = secret, **claims: Any) -> dict[str, str]:
        now = int(utcnow().timestamp())
        body = {"sub": "ada", "cid": "acme", "aud": "openbrain-widget", "iat": now, "exp": now + 60, **claims}
        # signed as docs/api.md tells a client's server to: with the key derived from the secret
        return {"x-widget-token": jwt.encode(body, hmac.new(b"openbrain-widget-token", key.encode(),
                                                            hashlib.sha256).digest())}

    def refused(got: Stream) -> tuple[int, str]:
        return got.status, got.error["error"]["code"]

    # a verified user's stream binds the session to them
    ada = stream(served.url, served.widget_key, {"message": "hi"}, origin=served.acme.origin, extra=signed("ada"))
    assert ada.status == 200
    session_id = ada.of_type("turn.started")[0]["session_id"]
    assert ChatSession.get("acme", session_id).end_user_id == "ada"

    # missing, wrong, expired, other-user, other-client and wrong-profile identities are refused before any event
    widget = {"origin": served.acme.origin}
    for extra in ({"x-user-id": "ada"}, {"x-user-id": "ada", "x-user-hash": ""},
                  {**signed("bob"), "x-user-id": "ada"}, token(exp=int(utcnow().timestamp()) - 3600),
                  token(cid="globex"), token(key="obid_" + "g" * 43)):
        assert refused(stream(served.url, served.widget_key, {"message": "hi"}, extra=extra, **widget)) == (
            401, "unauthorized"), extra
    scoped = {"x-widget-token": mint_token(backend.stores.clients.get("acme"), backend, "ada", "other")[0]}
    assert refused(stream(served.url, served.widget_key, {"message": "hi"}, extra=scoped, **widget)) == (
        401, "unauthorized")
    for other in (signed("bob"), {}):
        assert refused(stream(served.url, served.widget_key, {"sessionId": session_id, "message": "hi"},
                              extra=other, **widget)) == (404, "not_found")
    assert ChatSession.get("acme", session_id).turn_count == 1

    # a client requiring identity refuses the anonymous stream, not the verified user's or its server's
    require_identity(backend, "acme", True)
    assert refused(stream(served.url, served.widget_key, {"message": "hi"}, **widget)) == (401, "unauthorized")
    assert stream(served.url, served.widget_key, {"sessionId": session_id, "message": "again"}, extra=token(),
                  **widget).status == 200
    assert stream(served.url, served.acme.key, {"message": "hi"}).status == 200
