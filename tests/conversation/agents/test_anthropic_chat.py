"""The real `ChatAnthropic` (langchain-anthropic, through `init_chat_model`) against a local fake Messages API: a
whole chat turn with a tool call, a profile's own base_url and credentials, the deadline, and provider errors
mapped as OpenAI's are."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from typing import Any

import pytest
from support.backend import installed_backend
from support.fake_anthropic import TEST_KEY, FakeAnthropic, sent_key
from support.fake_openai import Reply, ToolCall, error

from openbrain.aws.backend import Backend
from openbrain.conversation.agents.models import UNUSED_KEY, build_chat_model, effective_model_spec
from openbrain.conversation.agents.runner import STOP_MAX_EXECUTION_TIME, run_turn
from openbrain.conversation.chat import ChatMessage, ChatResponse, chat
from openbrain.conversation.tools.context import ToolContext
from openbrain.core.errors import UpstreamError
from openbrain.core.settings import Settings
from openbrain.storage import memory_codec
from openbrain.storage.orm.agent_config import AgentConfig
from openbrain.storage.orm.chat_session import ChatSession

pytestmark = pytest.mark.integration

KEY_REF = "env:OB_MODEL_KEY_ANTHROPIC_TEST"


@pytest.fixture
def anthropic_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("OB_MODEL_KEY_ANTHROPIC_TEST", TEST_KEY)
    return TEST_KEY


@pytest.fixture
def backend() -> Iterator[Backend]:
    """A started embedded backend of this test alone (a failed turn must leave no session in it)."""
    with installed_backend(Settings(backend="memory", memory_store=None)) as started:
        yield started


def overrides(server: FakeAnthropic, **fields: Any) -> dict[str, Any]:
    """A profile on the fake server: its own base_url, with the client's own key (an SSM parameter under the
    client's prefix: a profile's base_url is never sent an operator's key)."""
    return {"model": "anthropic:claude-test", "tools": ["calculator"], "max_execution_time": 2,
            "base_url": server.base_url, "credentials": "ssm:/openbrain/clients/public/anthropic-key", **fields}


@pytest.fixture
def client_secret(backend: Backend) -> str:
    backend.client("ssm").put_parameter(Name="/openbrain/clients/public/anthropic-key", Value=TEST_KEY,
                                        Type="SecureString", Overwrite=True)
    return TEST_KEY


def ask(backend: Backend, server: FakeAnthropic, message: str, session_id: str | None = None,
        **fields: Any) -> ChatResponse:
    return chat(ChatMessage(message=message, session_id=session_id, agent_config_overrides=overrides(server, **fields)),
                backend)


def test_a_whole_turn_with_a_tool_call_through_chat_anthropic(
    anthropic_server: FakeAnthropic, backend: Backend, client_secret: str
) -> None:
    # given: the model asks for the calculator, then answers with its result
    anthropic_server.script(
        Reply(tool_calls=[ToolCall("calculator", {"expression": "6*7"}, id="toolu_1")]), Reply("It is 42.")
    )

    # when
    response = ask(backend, anthropic_server, "what is 6*7?")

    # then: the real client spoke the Messages API with the client's own key, and the turn is stored
    assert response.message == "It is 42."
    first, second = anthropic_server.message_requests
    assert sent_key(first) == sent_key(second) == client_secret
    assert first.body["model"] == "claude-test"
    assert [tool["name"] for tool in first.body["tools"]] == ["calculator"]
    [result] = [block for block in second.messages[-1]["content"] if block.get("type") == "tool_result"]
    assert result["tool_use_id"] == "toolu_1"
    assert "42" in str(result["content"])
    session = ChatSession.get(response.client_id, response.session_id)
    assert int(session.turn_count) == 1


def test_an_env_key_goes_to_the_providers_endpoint_only(backend: Backend, anthropic_key: str) -> None:
    # given: a profile naming an operator's key, no base_url
    config = AgentConfig("acme", "p", model="anthropic:claude-test", credentials=KEY_REF)
    settings = Settings(backend="memory", memory_store=None)

    # when
    model = build_chat_model(effective_model_spec(config, settings), config, settings)

    # then
    assert model.anthropic_api_key.get_secret_value() == anthropic_key  # type: ignore[attr-defined]
    assert model.anthropic_api_url == "https://api.anthropic.com"  # type: ignore[attr-defined]


def test_a_profile_base_url_without_credentials_never_gets_the_process_key(
    anthropic_server: FakeAnthropic, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: the operator's key in the environment, where the SDK would read it
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-operator")
    anthropic_server.script(Reply("hi"))

    # when
    ask(backend, anthropic_server, "hello", credentials=None, tools=[])

    # then: the profile's server got the placeholder, not the operator's key
    [request] = anthropic_server.message_requests
    assert sent_key(request) == UNUSED_KEY


@pytest.mark.parametrize(("status", "tries"), [(429, 2), (500, 2), (529, 2), (400, 1)])
def test_provider_errors_are_upstream_errors_retried_once_when_retryable(
    anthropic_server: FakeAnthropic, backend: Backend, client_secret: str, status: int, tries: int
) -> None:
    # given
    anthropic_server.always(error(status))

    # when
    with pytest.raises(UpstreamError) as raised:
        ask(backend, anthropic_server, "hello")

    # then: the same error as for OpenAI, without the provider's words
    assert type(raised.value) is UpstreamError
    assert raised.value.message == f"the model provider answered with an error (HTTP {status})"
    assert len(anthropic_server.message_requests) == tries


def test_a_refused_key_names_the_profiles_credentials_not_the_key(
    anthropic_server: FakeAnthropic, backend: Backend, client_secret: str
) -> None:
    anthropic_server.always(error(401, f"invalid x-api-key {client_secret}"))

    with pytest.raises(UpstreamError) as raised:
        ask(backend, anthropic_server, "hello")

    assert type(raised.value) is UpstreamError
    assert "refused the API key" in raised.value.message
    assert "ssm:/openbrain/clients/public/anthropic-key" in raised.value.message
    assert client_secret not in raised.value.message
    assert len(anthropic_server.message_requests) == 1


def test_a_hung_model_ends_by_the_deadline(
    anthropic_server: FakeAnthropic, backend: Backend, client_secret: str
) -> None:
    # given: a session with one answered turn (the client is built and warm); max_execution_time 2 s, and the
    # server would now answer after 30 s
    anthropic_server.script(Reply("first answer"))
    first = ask(backend, anthropic_server, "hello")
    anthropic_server.always(Reply("too late", delay=30))

    # when
    began = time.monotonic()
    response = ask(backend, anthropic_server, "still there?", session_id=first.session_id)

    # then: within the deadline plus 1 s, one try (no time left to retry), the turn stored with the stop reply
    assert time.monotonic() - began < 2 + 1
    assert response.stopped == STOP_MAX_EXECUTION_TIME
    assert len(anthropic_server.message_requests) == 1 + 1
    assert int(ChatSession.get(first.client_id, first.session_id).turn_count) == 2


def test_a_model_hung_after_a_tool_call_ends_the_turn_with_the_stop_reply(
    anthropic_server: FakeAnthropic, backend: Backend, client_secret: str
) -> None:
    # given: a warm client; then the model asks for a tool, and hangs
    anthropic_server.script(Reply("first answer"))
    first = ask(backend, anthropic_server, "hello")
    anthropic_server.script(Reply(tool_calls=[ToolCall("calculator", {"expression": "1+1"}, id="toolu_2")]))
    anthropic_server.always(Reply("too late", delay=30))

    # when
    began = time.monotonic()
    response = ask(backend, anthropic_server, "what is 1+1?", session_id=first.session_id)

    # then: the turn ends at the deadline with the usual reply, stored with the tool call and its result
    assert time.monotonic() - began < 2 + 1
    assert response.stopped == STOP_MAX_EXECUTION_TIME
    assert response.message.startswith("I had to stop here")
    session = ChatSession.get(response.client_id, response.session_id)
    assert int(session.turn_count) == 2
    stored = memory_codec.loads(session.memory)
    assert [type(m).__name__ for m in stored[-4:]] == ["HumanMessage", "AIMessage", "ToolMessage", "AIMessage"]
    assert stored[-2].tool_call_id == "toolu_2"  # type: ignore[attr-defined]


def test_a_smaller_deadline_set_by_the_caller_wins(
    anthropic_server: FakeAnthropic, backend: Backend, client_secret: str
) -> None:
    # given: a profile allowing 10 s, a caller (the Lambda's remaining time) allowing 1 s
    config = AgentConfig("public", "p").with_overrides(overrides(anthropic_server, max_execution_time=10))
    settings = Settings(backend="memory", memory_store=None)
    model = build_chat_model(effective_model_spec(config, settings), config, settings)
    anthropic_server.script(Reply("warm"))
    model.invoke("warm up")
    anthropic_server.always(Reply("too late", delay=30))
    context = ToolContext("public", "s")  # no tool runs
    context.deadline = time.monotonic() + 1

    # when
    began = time.monotonic()
    outcome = run_turn(config, model, [], "hello", context)

    # then: the stop reply names the time the turn was given
    assert time.monotonic() - began < 1 + 1
    assert context.deadline < began + 1.5  # not replaced by the profile's 10 s
    assert outcome.reply == "I had to stop here: this request took longer than 1 seconds. Please try again."


def test_no_caller_deadline_means_the_profiles() -> None:
    assert ToolContext("public", "s").deadline == math.inf
