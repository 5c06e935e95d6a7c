"""The WebSocket API's Lambda handler (api/websocket.py) under moto, fed the events API Gateway's WebSocket API
sends: `$connect` with the key and Origin, `$default` frames, `$disconnect`, and the scheduled sweep. Frames go
out through the real boto3 Management API client to moto. moto appends a connection's posted data to one byte
string and drops it on DeleteConnection, so the frames (and their count) are read from the client's own
`provide-client-params` event: each call's ConnectionId and Data, as sent."""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from support.api import ACME_ORIGIN, GLOBEX_ORIGIN, LambdaContext, make_client
from support.apigw_ws import ENDPOINT, STAGE, ws_event
from support.backend import installed_backend
from support.fake_openai import TEST_KEY, FakeOpenAI, Reply

from openbrain.api.websocket import MAX_FRAME_BYTES, handler, receive
from openbrain.aws.backend import Backend
from openbrain.aws.connections import ManagementApi, push
from openbrain.core.errors import NotFoundError
from openbrain.core.settings import Settings
from openbrain.storage import memory_codec
from openbrain.storage.orm import AgentConfig, ChatSession, Connection, Lead

pytestmark = pytest.mark.integration
POSTED: dict[str, list[dict[str, Any]]] = {}  # connection id -> the frames posted to it, in order
CLOSED: list[str] = []  # the connections DeleteConnection was called for
POST_EVENT = "provide-client-params.apigatewaymanagementapi.PostToConnection"
DELETE_EVENT = "provide-client-params.apigatewaymanagementapi.DeleteConnection"


@pytest.fixture(autouse=True)
def recorded(backend: Backend) -> Iterator[None]:
    client = ManagementApi(ENDPOINT, "us-east-1").client

    def record(params: dict[str, Any], **_: Any) -> None:
        POSTED.setdefault(params["ConnectionId"], []).append(json.loads(params["Data"]))

    def record_close(params: dict[str, Any], **_: Any) -> None:
        CLOSED.append(params["ConnectionId"])

    client.meta.events.register(POST_EVENT, record, "recorder")
    client.meta.events.register(DELETE_EVENT, record_close, "close-recorder")
    try:
        yield
    finally:
        client.meta.events.unregister(POST_EVENT, unique_id="recorder")
        client.meta.events.unregister(DELETE_EVENT, unique_id="close-recorder")
        POSTED.clear()
        CLOSED.clear()


def sent(connection_id: str) -> list[dict[str, Any]]:
    return list(POSTED.get(connection_id, []))


class Ws:
    """One client's connection, driven through the handler."""

    def __init__(self, key: str | None, origin: str | None = ACME_ORIGIN, *, subprotocol: bool = False) -> None:
        self.id = f"conn-{uuid.uuid4().hex[:12]}="
        headers = {"Origin": origin} if origin else {}
        if subprotocol and key:
            headers["Sec-WebSocket-Protocol"] = f"openbrain, {key}"
        self.response = handler(ws_event("$connect", self.id, headers=headers,
                                         query={"key": key} if key and not subprotocol else None), LambdaContext())

    def send(self, frame: Any) -> list[dict[str, Any]]:
        """Send a frame; the frames it was answered with."""
        before = len(sent(self.id))
        body = frame if isinstance(frame, str) else json.dumps(frame)
        assert handler(ws_event("$default", self.id, body), LambdaContext()) == {"statusCode": 200}
        return sent(self.id)[before:]

    def chat(self, **fields: Any) -> list[dict[str, Any]]:
        return self.send({"action": "chat", **fields})

    @property
    def record(self) -> Connection | None:
        try:
            return Connection.get(self.id)
        except Exception:
            return None


@pytest.fixture
def keys(backend: Backend) -> dict[str, str]:
    acme, server_key = make_client("acme", [ACME_ORIGIN])
    widget_key = acme.add_api_key("widget")
    acme.save()
    AgentConfig("acme", "default", model="offline", icebreaker="Hello from Acme!").save()
    _, globex_key = make_client("globex", [GLOBEX_ORIGIN])
    AgentConfig("globex", "default", model="offline").save()
    return {"server": server_key, "widget": widget_key, "globex": globex_key}


def acked(key: str, origin: str | None = ACME_ORIGIN) -> Ws:
    ws = Ws(key, origin)
    assert ws.response["statusCode"] == 200
    assert ws.send({"action": "ack"}) == [{"type": "ack"}]
    return ws


# ------------------------------------------------------------------------------------------------ $connect
def test_connect_takes_the_key_from_the_query_or_a_subprotocol_and_stores_who_connected(keys: dict[str, str]) -> None:
    by_query = Ws(keys["widget"])
    by_protocol = Ws(keys["server"], subprotocol=True)

    assert by_query.response == {"statusCode": 200}
    # a browser offering ["openbrain", key] must see one of them selected, or it fails the handshake
    assert by_protocol.response == {"statusCode": 200, "headers": {"Sec-WebSocket-Protocol": "openbrain"}}
    record = by_query.record
    assert record is not None
    assert (record.client_id, record.key_kind, record.origin, record.endpoint, record.acked) == (
        "acme", "widget", ACME_ORIGIN, ENDPOINT, False)
    assert by_protocol.record is not None and by_protocol.record.key_kind == "server"


@pytest.mark.parametrize(("key", "origin", "status", "code"), [
    (None, ACME_ORIGIN, 401, "unauthorized"),
    ("ob.acme.wrong-secret-0123456789abcdef0123456789", ACME_ORIGIN, 401, "unauthorized"),
    ("server", GLOBEX_ORIGIN, 403, "forbidden"),
    ("globex", ACME_ORIGIN, 403, "forbidden"),
])
def test_connect_refuses_a_wrong_key_or_a_foreign_origin_so_the_upgrade_fails(
        keys: dict[str, str], key: str | None, origin: str, status: int, code: str) -> None:
    ws = Ws(keys.get(key or "", key), origin)
    assert ws.response["statusCode"] == status
    assert json.loads(ws.response["body"])["error"]["code"] == code
    assert ws.record is None


def test_a_server_side_client_without_an_origin_connects(keys: dict[str, str]) -> None:
    assert Ws(keys["server"], origin=None).response["statusCode"] == 200


# ------------------------------------------------------------------------------------------------ the ack
def test_nothing_but_an_ack_is_accepted_first_and_the_connection_is_closed(keys: dict[str, str]) -> None:
    ws = Ws(keys["widget"])
    frames = ws.chat(message="hi")
    assert [(f["type"], f["code"]) for f in frames] == [("error", "ack_required")]
    assert ws.record is None  # forgotten, and API Gateway told to close it
    assert [ws.id] == CLOSED


def test_an_ack_later_than_the_limit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with installed_backend(Settings(backend="memory", memory_store=None, ws_ack_seconds=0.2)):
        _, key = make_client("acme", [ACME_ORIGIN])
        ws = Ws(key)
        time.sleep(0.3)
        assert [(f["type"], f["code"]) for f in ws.send({"action": "ack"})] == [("error", "ack_timeout")]
        assert ws.record is None and [ws.id] == CLOSED


def test_the_sweep_closes_connections_that_never_acknowledged(monkeypatch: pytest.MonkeyPatch) -> None:
    with installed_backend(Settings(backend="memory", memory_store=None, ws_ack_seconds=0.2)):
        _, key = make_client("acme", [ACME_ORIGIN])
        silent, talking = Ws(key), acked(key)
        young_before = Ws(key)
        time.sleep(0.3)
        young = Ws(key)
        # when: the scheduled invocation (EventBridge Scheduler's event carries no requestContext)
        result = handler({}, LambdaContext())
        # then: the two silent ones older than the limit are gone, the acked and the young one stay
        assert result == {"closed": 2}
        assert silent.record is None and young_before.record is None
        assert sorted(CLOSED) == sorted([silent.id, young_before.id])
        assert talking.record is not None and young.record is not None


def test_disconnect_forgets_the_connection(keys: dict[str, str]) -> None:
    ws = acked(keys["widget"])
    assert handler(ws_event("$disconnect", ws.id), LambdaContext()) == {"statusCode": 200}
    assert ws.record is None


# ------------------------------------------------------------------------------------------------ chat
def test_a_turn_streams_its_events_and_the_connection_remembers_its_session(keys: dict[str, str]) -> None:
    ws = acked(keys["widget"])

    first = ws.chat(message="what is 6 * 7")
    types = [f["type"] for f in first]
    assert types[0] == "turn.started" and types[-2:] == ["message", "turn.finished"]
    tokens = [f for f in first if f["type"] == "token"]
    assert tokens and "".join(t["text"] for t in tokens if t["step"] == tokens[-1]["step"]) == first[-2]["text"]
    session_id = first[-1]["session_id"]
    stored = memory_codec.loads(ChatSession.get("acme", session_id).memory)
    assert stored[-1].content == first[-2]["text"]

    # a frame without sessionId continues the connection's session, as the HTTP API's cookie does
    second = ws.chat(message="and 2 + 2")
    assert second[-1]["session_id"] == session_id
    assert ChatSession.get("acme", session_id).turn_count == 2


def test_a_widget_keys_turns_count_against_the_rate_limit_and_a_refusal_is_an_error_frame(
        keys: dict[str, str], backend: Backend) -> None:
    from openbrain.services.clients import set_limits

    set_limits(backend.stores, "acme", {"user_burst": 1})
    widget, server = acked(keys["widget"]), acked(keys["server"])
    assert widget.chat(reset=True)[-1]["type"] == "turn.finished"

    refused = widget.chat(reset=True)

    assert len(refused) == 1 and refused[0]["code"] == "rate_limited" and 1 <= refused[0]["retry_after"] <= 10
    assert server.chat(reset=True)[-1]["type"] == "turn.finished"  # the client's own server is not limited


def test_a_dps_frame_schedules_a_message_and_the_connection_goes_on(keys: dict[str, str]) -> None:
    # given: a widget visitor's connection with a session
    ws = acked(keys["widget"])
    session_id = ws.chat(message="hello")[-1]["session_id"]

    # when: a dps command (docs/scheduling.md), then one not understood, then a turn
    scheduled = ws.chat(message="dps user in 2 hours\n\nTime for a walk.")
    refused = ws.chat(message="dps user whenever\nhi")
    turn = ws.chat(message="what is 6 * 7")

    # then: the confirmation streams like a reply (no tokens: no model ran) in the connection's session
    assert [f["type"] for f in scheduled] == ["turn.started", "message", "turn.finished"]
    assert scheduled[1]["text"].startswith("Scheduled a message to you: ")
    assert scheduled[-1]["session_id"] == session_id and scheduled[-1]["model"] == "dps"
    [waiting] = ChatSession.get("acme", session_id).schedules or []
    assert waiting["prompt"] == "Time for a walk." and waiting["id"] in scheduled[1]["text"]
    # a command not understood is an error frame naming the part; the widget's session slot was freed each time
    assert [(f["type"], f["code"]) for f in refused] == [("error", "invalid_input")]
    assert '"whenever"' in refused[0]["message"]
    assert turn[-1]["type"] == "turn.finished" and turn[-1]["session_id"] == session_id


def test_a_long_reply_makes_at_most_one_post_per_50_ms_of_streaming_plus_the_control_frames() -> None:
    with FakeOpenAI() as server:
        # given: a model streaming 500 tokens over about 2 s
        server.always(Reply("ab" * 500, chunk_size=2, chunk_interval=0.004))
        settings = Settings(backend="memory", memory_store=None, openai_base_url=server.base_url,
                            openai_api_key=TEST_KEY)
        with installed_backend(settings):
            _, key = make_client("acme", [ACME_ORIGIN])
            AgentConfig("acme", "default", model="openai:gpt-test").save()
            ws = acked(key)
            posts: list[float] = []
            client = ManagementApi(ENDPOINT, "us-east-1").client

            def count(**_: Any) -> None:
                posts.append(time.monotonic())

            client.meta.events.register("before-call.apigatewaymanagementapi.PostToConnection", count, "counter")
            try:
                frames = ws.chat(message="tell me a long story")
            finally:
                client.meta.events.unregister("before-call.apigatewaymanagementapi.PostToConnection",
                                              unique_id="counter")

    tokens = [f for f in frames if f["type"] == "token"]
    control = len(frames) - len(tokens)
    assert [f["type"] for f in frames if f["type"] != "token"] == ["turn.started", "message", "turn.finished"]
    assert "".join(t["text"] for t in tokens) == "ab" * 500 == frames[-2]["text"]
    token_posts = posts[1:1 + len(tokens)]
    streaming = token_posts[-1] - token_posts[0]
    assert streaming > 1.0  # the tokens did come over time
    # the first at once, then at most one per 50 ms, and the last pieces when the step ends
    assert len(posts) == len(frames) and len(tokens) <= streaming / 0.05 + 2
    assert len(tokens) >= 5  # and incrementally, not as one frame
    assert control == 3


def test_a_gone_connection_stops_the_posting_and_is_forgotten(keys: dict[str, str], backend: Backend) -> None:
    # given: a Management API answering 410 GoneException (the client went away)
    posted: list[str] = []

    class Gone(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            posted.append(urllib.parse.unquote(self.path))
            self.rfile.read(int(self.headers["Content-Length"]))
            body = b'{"message": null}'
            self.send_response(410)
            self.send_header("x-amzn-ErrorType", "GoneException")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Gone)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        ws = acked(keys["widget"])
        socket = ManagementApi(f"http://127.0.0.1:{server.server_port}/{STAGE}", "us-east-1")
        # when
        receive(ws_event("$default", ws.id, json.dumps({"action": "chat", "message": "what is 6 * 7"})),
                backend, socket)
    finally:
        server.shutdown()
        server.server_close()

    # then: one post (turn.started) found it gone; nothing more was posted, and the connection is forgotten
    assert posted == [f"/{STAGE}/@connections/{ws.id}"]
    assert ws.record is None
    # the turn ran to its end unheard: the message and its reply are stored whole
    [session] = ChatSession.get_all("acme")
    messages = memory_codec.loads(session.memory)
    assert session.turn_count == 1
    assert [m.content for m in messages if m.type == "human"] == ["what is 6 * 7"]
    assert "42" in str(messages[-1].content)


def test_a_second_chat_while_a_turn_runs_is_a_conflict_and_the_first_goes_on(keys: dict[str, str],
                                                                               backend: Backend) -> None:
    ws = acked(keys["widget"])
    record = ws.record
    assert record is not None
    # given: another invocation's turn in flight on this connection
    from datetime import timedelta

    from openbrain.core.clock import utcnow

    assert backend.stores.connections.start_turn(record, utcnow() - timedelta(minutes=5))
    # when / then
    assert [(f["type"], f["code"]) for f in ws.chat(message="hi")] == [("error", "conflict")]
    # once it ends, the next turn runs
    backend.stores.connections.finish_turn(record, None)
    assert ws.chat(message="hi")[-1]["type"] == "turn.finished"


# ------------------------------------------------------------------------------------------------ tenants, keys
def test_another_clients_session_is_not_found(keys: dict[str, str]) -> None:
    theirs = acked(keys["globex"], GLOBEX_ORIGIN).chat(message="hi")[-1]["session_id"]
    ws = acked(keys["server"])
    assert [(f["type"], f["code"]) for f in ws.chat(sessionId=theirs, message="hi")][-1] == ("error", "not_found")
    [error] = ws.send({"action": "session", "sessionId": theirs})
    assert (error["type"], error["code"]) == ("error", "not_found")
    assert [(f["type"], f["code"]) for f in ws.chat(clientId="globex", message="hi")][-1] == ("error", "forbidden")
    assert ChatSession.get("globex", theirs).turn_count == 1


def test_a_widget_key_may_chat_and_read_its_session_but_not_read_leads(keys: dict[str, str]) -> None:
    lead = Lead("acme", session_id="s", email="ada@example.com")
    lead.save()
    widget = acked(keys["widget"])
    session_id = widget.chat(message="hi")[-1]["session_id"]

    [session] = widget.send({"action": "session"})  # the connection's session
    assert (session["type"], session["session"]["session_id"]) == ("session", session_id)
    [refused] = widget.send({"action": "lead", "leadId": lead.lead_id})
    assert (refused["type"], refused["code"]) == ("error", "forbidden")

    [read] = acked(keys["server"]).send({"action": "lead", "leadId": lead.lead_id})
    assert (read["type"], read["lead"]["email"]) == ("lead", "ada@example.com")


# ------------------------------------------------------------------------------------------------ bad frames
@pytest.mark.parametrize(("frame", "code"), [
    ("{not json", "invalid_json"),
    ("[1, 2]", "invalid_input"),
    ('{"action": "dance"}', "invalid_input"),
    (json.dumps({"action": "chat", "message": "x" * MAX_FRAME_BYTES}), "payload_too_large"),
    ('{"action": "chat", "reset": "yes"}', "invalid_input"),
    ('{"action": "chat", "message": "dps u in 1 hour\\nhi", "timezone": "Mars/Base"}', "invalid_input"),
])
def test_a_bad_frame_gets_an_error_frame_and_the_connection_stays(keys: dict[str, str], frame: str,
                                                                   code: str) -> None:
    ws = acked(keys["widget"])
    [error] = ws.send(frame)
    assert (error["type"], error["code"]) == ("error", code)
    assert ws.record is not None
    assert ws.chat(message="still there?")[-1]["type"] == "turn.finished"


def test_a_connection_record_expires_with_api_gateways_longest_connection(keys: dict[str, str]) -> None:
    record = acked(keys["widget"]).record
    assert record is not None and record.expires_at is not None
    assert 7100 < (record.expires_at - record.connected_at).total_seconds() <= 7200


def test_a_turn_over_the_websocket_prints_its_metrics_with_the_client_as_dimension(
        keys: dict[str, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "OpenBrain")
    ws = acked(keys["widget"])
    capsys.readouterr()

    frames = ws.chat(message="what is 2 + 2?")

    assert frames[-1]["type"] == "turn.finished"
    blobs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    assert [(b["client_id"], b["Turns"], b["TurnErrors"]) for b in blobs] == [("acme", [1], [0])]
    assert blobs[0]["InputTokens"][0] + blobs[0]["OutputTokens"][0] == frames[-1]["usage"]["total_tokens"]
# ------------------------------------------------------------------------------------------------ end-user identity
def _signed(secret: str, user_id: str) -> dict[str, str]:
    import hashlib
    import hmac

    return {"userId": user_id, "userHash": hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()}


@pytest.fixture
def identity_secret(keys: dict[str, str], backend: Backend) -> str:
    from openbrain.services.identity import rotate_identity_secret

    return rotate_identity_secret(backend, "acme")[1]


def test_an_ack_with_a_verified_identity_binds_the_connections_sessions_to_the_user(
        keys: dict[str, str], identity_secret: str, backend: Backend) -> None:
    from openbrain.services.identity import mint_token

    # given: ada acks with her hash on one connection and starts a session
    ada = Ws(keys["widget"])
    assert ada.send({"action": "ack", **_signed(identity_secret, "ada")}) == [{"type": "ack"}]
    assert ada.record is not None and ada.record.end_user_id == "ada"
    session_id = ada.chat(message="hi")[-1]["session_id"]
    assert ChatSession.get("acme", session_id).end_user_id == "ada"

    # then: bob's connection and an anonymous one find nothing there
    bob = Ws(keys["widget"])
    bob.send({"action": "ack", **_signed(identity_secret, "bob")})
    for other in (bob, acked(keys["widget"])):
        assert [(f["type"], f.get("code")) for f in other.chat(sessionId=session_id, message="hi")][-1] == (
            "error", "not_found")
        [error] = other.send({"action": "session", "sessionId": session_id})
        assert (error["type"], error["code"]) == ("error", "not_found")

    # and: ada resumes it on another device, with a token
    token, _ = mint_token(backend.stores.clients.get("acme"), backend, "ada")
    device_b = Ws(keys["widget"])
    assert device_b.send({"action": "ack", "token": token}) == [{"type": "ack"}]
    assert device_b.chat(sessionId=session_id, message="back")[-1]["type"] == "turn.finished"
    assert ChatSession.get("acme", session_id).turn_count == 2
    # a later ack changes nothing: the connection stays ada's
    assert device_b.send({"action": "ack", **_signed(identity_secret, "bob")}) == [{"type": "ack"}]
    assert device_b.record is not None and device_b.record.end_user_id == "ada"


@pytest.mark.parametrize("presented", [
    {"userId": "ada"},  # chatwoot/chatwoot#9493
    {"userId": "ada", "userHash": ""},
    {"userId": "ada", "userHash": "0" * 64},
    {"token": "e30.e30.e30"},
    {"token": 7},
    {"userId": ["ada"], "userHash": "x"},
])
def test_an_ack_whose_identity_does_not_verify_is_refused_and_closed(keys: dict[str, str], identity_secret: str,
                                                                     presented: dict[str, Any]) -> None:
    ws = Ws(keys["widget"])
    frames = ws.send({"action": "ack", **presented})
    assert [(f["type"], f["code"]) for f in frames] == [("error", "unauthorized")]
    assert ws.record is None  # forgotten, and API Gateway told to close it
    assert [ws.id] == CLOSED


def test_a_client_requiring_identity_closes_an_unverified_ack_and_serves_a_verified_one(
        keys: dict[str, str], identity_secret: str, backend: Backend) -> None:
    from openbrain.services.identity import require_identity

    require_identity(backend, "acme", True)
    anonymous = Ws(keys["widget"])
    [refused] = anonymous.send({"action": "ack"})
    assert (refused["type"], refused["code"]) == ("error", "unauthorized")
    assert anonymous.record is None and [anonymous.id] == CLOSED

    ada = Ws(keys["widget"])
    assert ada.send({"action": "ack", **_signed(identity_secret, "ada")}) == [{"type": "ack"}]
    assert ada.chat(message="hi")[-1]["type"] == "turn.finished"
    assert acked(keys["server"]).chat(message="hi")[-1]["type"] == "turn.finished"  # a server key is trusted


def test_a_connection_verified_by_a_token_is_closed_at_its_next_frame_once_the_token_expired(
        keys: dict[str, str], identity_secret: str, backend: Backend) -> None:
    from datetime import timedelta

    from openbrain.core.clock import utcnow
    from openbrain.services.identity import mint_token

    token, expires = mint_token(backend.stores.clients.get("acme"), backend, "ada", ttl_seconds=60)
    ws = Ws(keys["widget"])
    assert ws.send({"action": "ack", "token": token}) == [{"type": "ack"}]
    assert ws.record is not None and ws.record.user_expires_at == expires + timedelta(seconds=30)  # the leeway
    assert ws.chat(message="hi")[-1]["type"] == "turn.finished"

    # when: the token's time is up (its record moved into the past, as the clock would)
    Connection.get(ws.id).update(actions=[Connection.user_expires_at.set(utcnow() - timedelta(seconds=1))])

    # then
    frames = ws.chat(message="still me?")
    assert [(f["type"], f["code"]) for f in frames] == [("error", "unauthorized")]
    assert ws.record is None and [ws.id] == CLOSED


def test_an_anonymous_connection_acked_before_the_client_required_identity_reads_and_chats_no_more(
        keys: dict[str, str], identity_secret: str, backend: Backend) -> None:
    from openbrain.services.identity import require_identity

    # given: an anonymous visitor's connection, acked and chatting while the client accepted them
    ws = acked(keys["widget"])
    session_id = ws.chat(message="hi")[-1]["session_id"]
    assert ws.send({"action": "session", "sessionId": session_id})[-1]["type"] == "session"

    # when: the client starts requiring a verified end user
    require_identity(backend, "acme", True)

    # then: the connection it still holds neither reads that session nor chats, as on every HTTP route
    for frame in ({"action": "session", "sessionId": session_id}, {"action": "session"},
                  {"action": "chat", "message": "still here?"}):
        assert [(f["type"], f.get("code")) for f in ws.send(frame)] == [("error", "unauthorized")], frame
    assert ChatSession.get("acme", session_id).turn_count == 1


def test_a_rotation_of_the_identity_secret_closes_the_connections_it_verified_at_their_next_frame(
        keys: dict[str, str], identity_secret: str, backend: Backend) -> None:
    from openbrain.services.identity import mint_token, rotate_identity_secret

    # given: ada's connections, one verified by her hash, one by a token, and an anonymous and a server one
    by_hash = Ws(keys["widget"])
    assert by_hash.send({"action": "ack", **_signed(identity_secret, "ada")}) == [{"type": "ack"}]
    by_token = Ws(keys["widget"])
    token, _ = mint_token(backend.stores.clients.get("acme"), backend, "ada")
    assert by_token.send({"action": "ack", "token": token}) == [{"type": "ack"}]
    anonymous, server = acked(keys["widget"]), acked(keys["server"])
    assert by_hash.chat(message="hi")[-1]["type"] == "turn.finished"

    # when: the client rotates its identity secret (docs/admin.md: the old one's hashes and tokens are refused
    # from the next request on)
    rotate_identity_secret(backend, "acme")

    # then: the verified connections are refused and closed; the others, which no secret vouched for, go on
    for ws in (by_hash, by_token):
        assert [(f["type"], f.get("code")) for f in ws.chat(message="still me")] == [("error", "unauthorized")]
        assert ws.record is None and ws.id in CLOSED
    assert anonymous.chat(message="hi")[-1]["type"] == "turn.finished"
    assert server.chat(message="hi")[-1]["type"] == "turn.finished"


# ------------------------------------------------------------------------------------------------ push
def test_push_posts_to_every_connection_of_the_session_through_the_management_api_and_forgets_a_gone_one(
        keys: dict[str, str], backend: Backend) -> None:
    # given: a connection that chatted, one that resumed its session (a session frame), one of another session,
    # another client's connection, and one stored with a Management API that answers 410 (the client went away)
    chatted, resumed, other = acked(keys["widget"]), acked(keys["widget"]), acked(keys["widget"])
    session_id = chatted.chat(message="hello")[-1]["session_id"]
    assert resumed.send({"action": "session", "sessionId": session_id})[0]["type"] == "session"
    assert other.chat(message="hi")[-1]["session_id"] != session_id
    foreign = acked(keys["globex"], GLOBEX_ORIGIN)
    foreign.chat(message="hi")

    class Gone(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(410)
            self.send_header("x-amzn-ErrorType", "GoneException")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Gone)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    gone = Connection("conn-gone=", client_id="acme", key_kind="widget", acked=True, session_id=session_id,
                      endpoint=f"http://127.0.0.1:{server.server_port}/{STAGE}")
    gone.save()
    expired_user = Connection("conn-expired-user=", client_id="acme", key_kind="widget", acked=True,
                              session_id=session_id, endpoint=ENDPOINT, end_user_id="ada",
                              user_expires_at=datetime.now(UTC) - timedelta(seconds=1))
    expired_user.save()
    frame = {"type": "message", "text": "Time for the stand-up", "session_id": session_id, "scheduled": True,
             "schedule_id": "01KBSCHEDULE0000000000000A", "role": "assistant"}
    before = {ws.id: len(sent(ws.id)) for ws in (chatted, resumed, other, foreign)}

    # when
    try:
        delivered = push(backend, "acme", session_id, frame)
    finally:
        server.shutdown()
        server.server_close()

    # then: the two connections of the session got it, as posted by API Gateway's Management API; nobody else did
    assert delivered == 2
    assert [sent(ws.id)[before[ws.id]:] for ws in (chatted, resumed, other, foreign)] == [[frame], [frame], [], []]
    assert sent(expired_user.connection_id) == []  # its user's widget token expired
    with pytest.raises(NotFoundError):  # the gone one is forgotten
        backend.stores.connections.get("conn-gone=")
    assert push(backend, "globex", session_id, frame) == 0  # another client naming the session reaches nobody
