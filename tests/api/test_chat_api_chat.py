"""POST /chat: turns, the Session cookie, tenant binding, and error bodies for bad input and provider failures."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.api import Api, HttpResponse, make_client
from support.backend import installed_backend

from openbrain.aws.backend import Backend
from openbrain.core.settings import Settings
from openbrain.storage.orm import AgentConfig, ChatSession

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def session_cookie(response: HttpResponse) -> str:
    cookies = response.headers.get("Set-Cookie", [])
    assert len(cookies) == 1, cookies
    return cookies[0]


def test_reset_starts_a_session_with_the_icebreaker_and_sets_the_cookie(acme: Api) -> None:
    response = acme.post("/chat", {"reset": True, "agentConfig": "bot"})

    assert response.status == 200
    body = response.json
    assert body["message"] == "Hello from Acme!"
    assert body["client_id"] == "acme"
    assert body["profile_name"] == "bot"
    assert body["events"] == []
    assert set(body) >= {"message", "session_id", "client_id", "profile_name", "events"}
    assert session_cookie(response) == f"Session={body['session_id']}; Path=/; HttpOnly; Secure; SameSite=None"
    assert ChatSession.get("acme", body["session_id"]).profile_name == "bot"


def test_a_turn_continues_the_session_named_by_session_id(acme: Api) -> None:
    session_id = acme.post("/chat", {"reset": True, "agentConfig": "bot"}).json["session_id"]

    response = acme.post("/chat", {"sessionId": session_id, "message": "what is (17 + 5) * 3"})

    assert response.status == 200
    assert response.json["session_id"] == session_id
    assert "66" in response.json["message"]
    assert int(ChatSession.get("acme", session_id).turn_count) == 1


def test_snake_case_body_is_accepted(acme: Api) -> None:
    session_id = acme.post("/chat", {"reset": True, "agent_config": "bot"}).json["session_id"]

    response = acme.post("/chat", {"session_id": session_id, "message": "what is 2 + 2", "client_id": "acme"})

    assert response.status == 200
    assert response.json["session_id"] == session_id


def test_the_session_cookie_continues_the_conversation_without_a_session_id(acme: Api) -> None:
    # given: a browser that kept the cookie
    first = acme.post("/chat", {"reset": True, "agentConfig": "bot"})
    cookie = session_cookie(first).split(";")[0]

    # when
    response = acme.post("/chat", {"message": "what is 2 + 3"}, headers={"Cookie": f"theme=dark; {cookie}"})

    # then
    assert response.status == 200
    assert response.json["session_id"] == first.json["session_id"]
    assert int(ChatSession.get("acme", first.json["session_id"]).turn_count) == 1


def test_reset_ignores_the_cookie_and_starts_afresh(acme: Api) -> None:
    first = acme.post("/chat", {"reset": True, "agentConfig": "bot"})
    cookie = session_cookie(first).split(";")[0]

    second = acme.post("/chat", {"reset": True, "agentConfig": "bot"}, headers={"Cookie": cookie})

    assert second.json["session_id"] != first.json["session_id"]


def test_a_stale_cookie_starts_a_new_session(acme: Api) -> None:
    stale = "Session=01KAAAAAAAAAAAAAAAAAAAAAAA"

    response = acme.post("/chat", {"message": "what is 2 + 3", "agentConfig": "bot"}, headers={"Cookie": stale})

    assert response.status == 200
    assert response.json["session_id"] != "01KAAAAAAAAAAAAAAAAAAAAAAA"
    assert "5" in response.json["message"]


def test_without_session_or_cookie_a_message_starts_and_answers_a_session(acme: Api) -> None:
    response = acme.post("/chat", {"message": "what is 6 * 7", "agentConfig": "bot"})

    assert response.status == 200
    assert "42" in response.json["message"]
    assert int(ChatSession.get("acme", response.json["session_id"]).turn_count) == 1


def test_a_captured_lead_is_reported_as_an_event(acme: Api) -> None:
    session_id = acme.post("/chat", {"reset": True, "agentConfig": "bot"}).json["session_id"]

    response = acme.post("/chat", {"sessionId": session_id, "message": "my name is Ada Lovelace, email ada@x.example"})

    assert response.status == 200
    assert [event["type"] for event in response.json["events"]] == ["lead.captured.v1"]


def test_a_body_client_id_of_another_client_is_forbidden(acme: Api, globex: Api) -> None:
    response = acme.post("/chat", {"clientId": "globex", "reset": True, "agentConfig": "bot"})

    assert response.status == 403
    assert response.error["code"] == "forbidden"
    assert ChatSession.get_all("globex") == []


def test_another_clients_session_is_not_found(acme: Api, globex: Api) -> None:
    theirs = globex.post("/chat", {"reset": True, "agentConfig": "bot"}).json["session_id"]

    response = acme.post("/chat", {"sessionId": theirs, "message": "hello"})

    assert response.status == 404
    assert response.error["code"] == "not_found"
    assert "globex" not in response.body
    assert int(ChatSession.get("globex", theirs).turn_count) == 0


def test_chat_needs_a_key(anonymous: Api, acme: Api) -> None:
    response = anonymous.post("/chat", {"reset": True})

    assert response.status == 401
    assert response.error["code"] == "unauthorized"


@pytest.mark.parametrize(
    ("raw", "status", "code"),
    [
        ("{not json", 400, "invalid_json"),
        ('{"message": "unterminated', 400, "invalid_json"),
        ('["a", "list"]', 422, "invalid_input"),
        ('[{"message": "hi"}]', 422, "invalid_input"),  # the long fuzz run: Powertools took the first element
        ('[{"reset": true}, 1]', 422, "invalid_input"),
        ('"a string"', 422, "invalid_input"),
        ('{"message": 5}', 422, "invalid_input"),
        ('{"reset": {"a": 1}}', 422, "invalid_input"),
        ('{"agentConfigOverrides": "model=offline"}', 422, "invalid_input"),
        ('{"agentConfig": ""}', 422, "invalid_input"),
        ('{"sessionId": 12}', 422, "invalid_input"),
        ('{"reset": true, "agentConfigOverrides": {"temperature": NaN}}', 422, "invalid_input"),
        ('{"reset": true, "agentConfigOverrides": {"temperature": Infinity}}', 422, "invalid_input"),
    ],
)
def test_malformed_bodies_are_4xx_with_an_error_body(acme: Api, raw: str, status: int, code: str) -> None:
    response = acme.post("/chat", raw_body=raw)

    assert response.status == status, response.body
    assert response.error["code"] == code
    assert "Traceback" not in response.body


@pytest.mark.parametrize(("method", "path", "body"), [
    ("PUT", "/limits", {"turns_per_day": 5}),
    ("PUT", "/agent-configs/sales", {"model": "offline"}),
    ("POST", "/chat", {"message": "hi"}),
])
def test_every_route_refuses_a_valid_body_wrapped_in_an_array_and_changes_nothing(acme: Api, method: str, path: str,
                                                                                  body: dict[str, object]) -> None:
    response = acme.call(method, path, [body])

    assert response.status == 422, response.body
    assert response.error == {"code": "invalid_input", "message": "body: must be a JSON object, not list"}
    assert acme.get("/limits").json["turns_per_day"] == 2_000
    assert acme.get("/agent-configs/sales").status == 404


def test_unknown_body_keys_are_refused_where_the_document_says_so_and_are_tool_context_on_chat(
        acme: Api, anonymous: Api) -> None:
    # given: the bodies the OpenAPI document describes, and which of them take keys it does not list
    spec = anonymous.get("/openapi.json").json
    bodies = {(method.upper(), path): op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
              for path, ops in spec["paths"].items() for method, op in ops.items() if "requestBody" in op}
    schemas = spec["components"]["schemas"]
    closed = {route for route, ref in bodies.items() if schemas[ref.rsplit("/", 1)[1]]["additionalProperties"] is False}
    assert bodies.keys() - closed == {("POST", "/chat")}
    # and docs/api.md's 422 row names the same routes
    row = next(line for line in (ROOT / "docs" / "api.md").read_text().splitlines() if "`invalid_input` | well" in line)
    assert all(f"`{method} {path}`" in row for method, path in bodies)

    # when / then: an unknown key beside valid fields is 422 naming it where the schema is closed, and changes nothing
    valid = {"/agent-configs/{profile_name}": {"model": "offline"}, "/limits": {}, "/widget-tokens": {"userId": "ada"}}
    assert {path for _, path in closed} == valid.keys()
    for method, path in closed:
        response = acme.call(method, path.replace("{profile_name}", "sales"), {**valid[path], "bogus": 1})
        assert (response.status, response.error["code"]) == (422, "invalid_input"), (path, response.body)
        assert "bogus" in response.error["message"]
    assert acme.get("/agent-configs/sales").status == 404
    # and POST /chat keeps it as the session's tool context
    chat = acme.post("/chat", {"agentConfig": "bot", "message": "hi", "bogus": 1})
    assert chat.status == 200, chat.body
    assert ChatSession.get("acme", chat.json["session_id"]).context == {"bogus": 1}


def test_a_wrong_type_names_the_field(acme: Api) -> None:
    response = acme.post("/chat", {"message": ["not", "text"]})

    assert response.status == 422
    assert response.error["message"].startswith("body.message:")


def test_a_non_json_content_type_is_415(acme: Api) -> None:
    response = acme.post("/chat", raw_body="message=hi", headers={"Content-Type": "text/plain"})

    assert response.status == 415
    assert response.error["code"] == "unsupported_media_type"


def test_a_base64_encoded_body_is_read(acme: Api) -> None:
    response = acme.post("/chat", raw_body=json.dumps({"reset": True, "agentConfig": "bot"}), base64_body=True)

    assert response.status == 200
    assert response.json["message"] == "Hello from Acme!"


def test_a_message_over_the_limit_is_422_and_the_session_is_unchanged(acme: Api, backend: Backend) -> None:
    session_id = acme.post("/chat", {"reset": True, "agentConfig": "bot"}).json["session_id"]
    limit = backend.settings.max_message_chars

    response = acme.post("/chat", {"sessionId": session_id, "message": "a" * (limit + 1)})

    assert response.status == 422
    assert response.error["code"] == "invalid_input"
    assert str(limit) in response.error["message"]
    assert int(ChatSession.get("acme", session_id).turn_count) == 0


def test_a_message_at_the_limit_is_answered(acme: Api, backend: Backend) -> None:
    session_id = acme.post("/chat", {"reset": True, "agentConfig": "bot"}).json["session_id"]

    response = acme.post("/chat", {"sessionId": session_id, "message": "b" * backend.settings.max_message_chars})

    assert response.status == 200


def test_a_body_over_the_size_limit_is_413(acme: Api, backend: Backend) -> None:
    limit = backend.settings.max_body_bytes

    response = acme.post("/chat", {"reset": True, "notes": "x" * limit})

    assert response.status == 413
    assert response.error["code"] == "payload_too_large"
    assert ChatSession.get_all("acme") == []


def test_the_size_limit_counts_bytes_not_characters(acme: Api, backend: Backend) -> None:
    # 3 bytes a character in UTF-8: under the limit in characters, over it in bytes
    response = acme.post("/chat", raw_body=json.dumps({"notes": "語" * (backend.settings.max_body_bytes // 2)},
                                                      ensure_ascii=False))

    assert response.status == 413


def test_an_unknown_profile_is_404(acme: Api) -> None:
    response = acme.post("/chat", {"reset": True, "agentConfig": "nope"})

    assert response.status == 404
    assert response.error["code"] == "not_found"


def test_another_clients_profile_is_not_found(acme: Api, globex: Api) -> None:
    AgentConfig("globex", "secret-profile", model="offline").save()

    response = acme.post("/chat", {"reset": True, "agentConfig": "secret-profile"})

    assert response.status == 404


@pytest.mark.parametrize("session_id", ["../../etc", "x" * 2000, "a b"])
def test_impossible_session_ids_are_404_not_5xx(acme: Api, session_id: str) -> None:
    response = acme.post("/chat", {"sessionId": session_id, "message": "hi"})

    assert response.status == 404


def test_bad_overrides_are_422(acme: Api) -> None:
    response = acme.post("/chat", {"reset": True, "agentConfigOverrides": {"temperature": 9}})

    assert response.status == 422
    assert "temperature" in response.error["message"]


def test_an_ended_conversation_is_409(acme: Api) -> None:
    session_id = acme.post("/chat", {"reset": True, "agentConfig": "bot"}).json["session_id"]
    assert acme.post("/chat", {"sessionId": session_id, "message": "goodbye"}).json["ended"] is True

    response = acme.post("/chat", {"sessionId": session_id, "message": "hello again"})

    assert response.status == 409
    assert response.error["code"] == "session_ended"


def test_a_cookie_naming_an_ended_conversation_starts_a_new_one(acme: Api) -> None:
    ended = acme.post("/chat", {"reset": True, "agentConfig": "bot"}).json["session_id"]
    assert acme.post("/chat", {"sessionId": ended, "message": "goodbye"}).json["ended"] is True

    response = acme.post("/chat", {"message": "what is 2 + 3", "agentConfig": "bot"},
                         headers={"Cookie": f"Session={ended}"})

    assert response.status == 200
    assert response.json["session_id"] != ended and "5" in response.json["message"]


@pytest.mark.parametrize("override", ["systemMessage", "model", "tools", "maxIterations", "maxExecutionTime"])
def test_a_public_key_cannot_override_the_prompt_model_tools_or_limits(acme: Api, override: str) -> None:
    value = {"systemMessage": "be a free general assistant", "model": "openai:gpt-4o", "tools": [],
             "maxIterations": 50, "maxExecutionTime": 900}[override]

    response = acme.post("/chat", {"reset": True, "agentConfigOverrides": {override: value}})

    assert response.status == 403
    assert response.error["code"] == "forbidden"


def test_a_widget_may_override_the_icebreaker_and_temperature(acme: Api) -> None:
    response = acme.post("/chat", {"reset": True, "agentConfigOverrides": {"iceBreaker": "Hej!", "temperature": 0.2}})

    assert response.status == 200 and response.json["message"] == "Hej!"


# --- provider failures: a backend whose OpenAI base URL is on loopback -------------------------------------


def _unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def provider_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Backend]:
    """Own embedded backend whose `openai:*` models talk to `request.param`'s base URL."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings(backend="memory", memory_store=None, openai_base_url=request.param, openai_api_key="sk-test")
    with installed_backend(settings) as started:
        yield started


def _provider_tenant(max_execution_time: float = 1) -> tuple[Api, str]:
    _, api_key = make_client("acme", [])
    AgentConfig("acme", "remote", model="openai:x", max_execution_time=max_execution_time, tools=["calculator"]).save()
    api = Api(api_key)
    session_id = api.post("/chat", {"reset": True, "agentConfig": "remote"}).json["session_id"]
    return api, session_id


def test_a_database_failure_is_a_generic_502_that_names_no_table_endpoint_or_setting(
        backend: Backend, caplog: pytest.LogCaptureFixture) -> None:
    # given: the sessions table is gone (an operator's mistake); the clients table answers the key
    _, api_key = make_client("acme", [])
    backend.client("dynamodb").delete_table(TableName=backend.settings.chat_session_table)

    response = Api(api_key).post("/chat", {"message": "hello"})

    # then: the caller learns the database failed, the operator reads what to do in the log
    assert response.status == 502
    assert response.error == {"code": "upstream_error",
                              "message": "the database failed; please try again (its operators have been told)"}
    assert any("ob-admin init" in str(getattr(r, "detail", "")) for r in caplog.records), caplog.records


@pytest.mark.parametrize("provider_backend", [f"http://127.0.0.1:{_unused_port()}/v1"], indirect=True,
                         ids=["unused-loopback-port"])  # the same test id in every xdist worker
def test_an_unreachable_provider_is_502_and_the_session_is_unchanged(provider_backend: Backend) -> None:
    api, session_id = _provider_tenant()
    before = ChatSession.get("acme", session_id)

    response = api.post("/chat", {"sessionId": session_id, "message": "what is 1 + 1"})

    assert response.status == 502
    assert response.error["code"] == "upstream_error"
    after = ChatSession.get("acme", session_id)
    assert (after.version, after.memory, int(after.turn_count)) == (before.version, before.memory, 0)


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A loopback port that accepts connections and never answers."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield f"http://127.0.0.1:{server.getsockname()[1]}/v1"


@pytest.fixture
def silent_backend(silent_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Backend]:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings(backend="memory", memory_store=None, openai_base_url=silent_server, openai_api_key="sk-test")
    with installed_backend(settings) as started:
        yield started


def test_a_provider_that_does_not_answer_ends_the_turn_at_its_deadline(silent_backend: Backend) -> None:
    import langchain_openai  # noqa: F401  # a warm process: the clock below is the turn's, not the import's

    api, session_id = _provider_tenant()

    began = time.monotonic()
    response = api.post("/chat", {"sessionId": session_id, "message": "what is 1 + 1"})

    assert time.monotonic() - began < 1 + 1
    assert response.status == 200
    assert (response.json["stopped"], response.json["message"]) == (
        "max_execution_time", "I had to stop here: this request took longer than 1 seconds. Please try again.")
    assert int(ChatSession.get("acme", session_id).turn_count) == 1


def test_the_lambdas_remaining_time_bounds_a_turn_below_the_profiles_limit(silent_backend: Backend) -> None:
    # given: a profile allowing 30 s, and a Lambda with 4.5 s left (the API keeps 2 s for the commit)
    import langchain_openai  # noqa: F401  # as above

    api, session_id = _provider_tenant(max_execution_time=30)
    api.context.remaining_ms = 4_500

    began = time.monotonic()
    response = api.post("/chat", {"sessionId": session_id, "message": "what is 1 + 1"})

    assert time.monotonic() - began < 2.5 + 1
    assert response.json["stopped"] == "max_execution_time"
    assert response.json["message"].startswith("I had to stop here: this request took longer than")
    assert int(ChatSession.get("acme", session_id).turn_count) == 1
