"""Which model a turn uses, and the ChatOpenAI it builds (exercised for real against the fake server)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import pytest
from langchain_core.messages import AIMessageChunk, HumanMessage, SystemMessage
from langchain_openai import ChatOpenAI
from support.fake_openai import TEST_KEY, FakeOpenAI, Reply, ToolCall

from openbrain.aws.backend import Backend
from openbrain.conversation.agents import models
from openbrain.conversation.agents.models import (
    OFFLINE,
    UNUSED_KEY,
    build_chat_model,
    effective_model_label,
    effective_model_spec,
)
from openbrain.conversation.agents.offline import OfflineChatModel
from openbrain.conversation.tools.registry import build_tools
from openbrain.core.errors import ConfigurationError, InvalidInputError
from openbrain.core.settings import Settings
from openbrain.domain.model_spec import ModelSpec
from openbrain.storage.orm.agent_config import AgentConfig


def config(model: str = "openai:gpt-test", **fields: Any) -> AgentConfig:
    return AgentConfig("public", "default", model=model, **fields)


def memory_settings(**fields: Any) -> Settings:
    return Settings(backend="memory", memory_store=None, **fields)


@pytest.fixture
def fresh_notices(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forget which fallback notices this process already printed."""
    monkeypatch.setattr(models, "_noticed", set())


def joined(chunks: Iterable[Any]) -> AIMessageChunk:
    """The streamed chunks added up, as langchain reassembles them."""
    parts = list(chunks)
    assert parts, "the stream was empty"
    assert all(isinstance(part, AIMessageChunk) for part in parts)
    total: AIMessageChunk = parts[0]
    for part in parts[1:]:
        total = total + part
    return total


# -- effective_model_spec ------------------------------------------------------------------------


def test_openai_without_key_or_base_url_on_memory_backend_falls_back_to_offline_with_a_notice(
    fresh_notices: None, capsys: pytest.CaptureFixture[str]
) -> None:
    # when
    spec = effective_model_spec(config("openai:gpt-4o-mini"), memory_settings())

    # then
    assert spec == OFFLINE
    captured = capsys.readouterr()
    assert captured.out == ""
    [line] = captured.err.splitlines()
    assert "OPENAI_API_KEY" in line
    assert "offline" in line
    assert "openai:gpt-4o-mini" in line


def test_fallback_notice_is_printed_once_per_model(fresh_notices: None, capsys: pytest.CaptureFixture[str]) -> None:
    # given
    effective_model_spec(config("openai:gpt-4o-mini"), memory_settings())
    capsys.readouterr()

    # when
    again = effective_model_spec(config("openai:gpt-4o-mini"), memory_settings())

    # then
    assert again == OFFLINE
    assert capsys.readouterr().err == ""


def test_openai_without_key_on_aws_backend_is_a_configuration_error_saying_what_to_set(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # when
    with pytest.raises(ConfigurationError) as raised:
        effective_model_spec(config("openai:gpt-4o-mini"), Settings(backend="aws"))

    # then
    assert "OPENAI_API_KEY" in raised.value.message
    assert "OPENAI_BASE_URL" in raised.value.message
    assert "offline" in raised.value.message
    assert capsys.readouterr().err == ""


def test_openai_without_key_inside_lambda_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="OPENAI_API_KEY"):
        effective_model_spec(config(), Settings(lambda_function_name="openbrain-chat"))


@pytest.mark.parametrize("backend", ["memory", "aws"])
def test_openai_with_a_key_is_used_as_asked(backend: str) -> None:
    settings = Settings(backend=backend, memory_store=None, openai_api_key="sk-test")

    assert effective_model_spec(config("openai:gpt-4o-mini"), settings) == ModelSpec("openai", "gpt-4o-mini")


@pytest.mark.parametrize("backend", ["memory", "aws"])
def test_openai_base_url_without_key_is_used_as_asked(backend: str) -> None:
    settings = Settings(backend=backend, memory_store=None, openai_base_url="http://127.0.0.1:9/v1")

    assert effective_model_spec(config("openai:llama3"), settings) == ModelSpec("openai", "llama3")


def test_offline_needs_no_key_even_on_aws(capsys: pytest.CaptureFixture[str]) -> None:
    assert effective_model_spec(config("offline"), Settings(backend="aws")) == OFFLINE
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("model", ["nosuch:claude-3", "gpt-4o-mini", "openai:", "openai:bad name", ""])
def test_invalid_model_spec_is_invalid_input(model: str) -> None:
    with pytest.raises(InvalidInputError, match="openai:<model>"):
        effective_model_spec(config(model), memory_settings(openai_api_key="sk-test"))


# -- effective_model_label -----------------------------------------------------------------------


@pytest.mark.parametrize(("model", "settings", "label"), [
    ("openai:gpt-4o-mini", {}, "openai:gpt-4o-mini → offline (no OPENAI_API_KEY)"),
    ("openai:gpt-4o-mini", {"backend": "aws"}, "openai:gpt-4o-mini → error (no OPENAI_API_KEY)"),
    ("openai:gpt-4o-mini", {"openai_api_key": "sk-test"}, "openai:gpt-4o-mini"),
    ("openai:llama3", {"openai_base_url": "http://127.0.0.1:9/v1"}, "openai:llama3"),
    ("offline", {"backend": "aws"}, "offline"),
])
def test_the_label_names_the_model_a_turn_would_run(
    model: str, settings: dict[str, str], label: str, fresh_notices: None, capsys: pytest.CaptureFixture[str]
) -> None:
    # given the settings (the memory backend unless they say aws)
    current = Settings(**{"backend": "memory", "memory_store": None, **settings})

    # then the label names the model, and prints no notice (the turn does)
    assert effective_model_label(config(model), current) == label
    assert capsys.readouterr().err == ""
    if "→ error" not in label:  # and it is the model the turn's rule picks
        assert str(effective_model_spec(config(model), current)) == label.split(" → ")[-1].split(" (")[0]


def test_the_profiles_own_connection_counts_as_a_key_in_the_label() -> None:
    connected = config("openai:llama3", base_url="http://127.0.0.1:9/v1")

    assert effective_model_label(connected, memory_settings()) == "openai:llama3"


# -- build_chat_model ----------------------------------------------------------------------------


def test_offline_spec_builds_the_offline_model() -> None:
    assert isinstance(build_chat_model(OFFLINE, config("offline"), memory_settings()), OfflineChatModel)


def test_a_process_builds_one_chat_model_per_setting() -> None:
    # given
    spec, settings = ModelSpec("openai", "gpt-4o-mini"), memory_settings(openai_api_key="sk-test")
    first = build_chat_model(spec, config("openai:gpt-4o-mini"), settings)

    # then: the same setting is the same client (so the agent compiled around it serves the next turn) ...
    assert build_chat_model(spec, config("openai:gpt-4o-mini"), settings) is first
    assert build_chat_model(OFFLINE, config("offline"), settings) is build_chat_model(OFFLINE, config(), settings)
    # ... and whatever the client sends differently is another one
    other_temperature = AgentConfig("public", "default", model="openai:gpt-4o-mini", temperature=0.1)
    assert build_chat_model(spec, other_temperature, settings) is not first
    rotated = memory_settings(openai_api_key="sk-rotated")
    elsewhere = memory_settings(openai_api_key="sk-test", openai_base_url="http://127.0.0.1:9/v1")
    assert build_chat_model(spec, config("openai:gpt-4o-mini"), rotated) is not first
    assert build_chat_model(spec, config("openai:gpt-4o-mini"), elsewhere) is not first


def test_base_url_without_key_sends_the_placeholder_key(openai_server: FakeOpenAI) -> None:
    # given
    settings = memory_settings(openai_base_url=openai_server.base_url)
    agent_config = config("openai:llama3")
    openai_server.script(Reply("hi"))

    # when
    model = build_chat_model(effective_model_spec(agent_config, settings), agent_config, settings)
    reply = model.invoke("hello")

    # then
    assert reply.content == "hi"
    [request] = openai_server.completion_requests
    assert request.headers["authorization"] == f"Bearer {UNUSED_KEY}"
    assert request.body["model"] == "llama3"


def test_chat_openai_sends_the_configured_model_temperature_and_key(openai_server: FakeOpenAI) -> None:
    # given
    settings = memory_settings(openai_base_url=openai_server.base_url, openai_api_key=TEST_KEY)
    agent_config = config("openai:gpt-test", temperature=1.5)
    openai_server.script(Reply("fine"))

    # when
    reply = build_chat_model(ModelSpec("openai", "gpt-test"), agent_config, settings).invoke(
        [SystemMessage("be brief"), HumanMessage("how are you?")]
    )

    # then
    assert reply.content == "fine"
    assert reply.response_metadata["model_name"] == "gpt-test"
    assert reply.response_metadata["finish_reason"] == "stop"
    assert reply.usage_metadata is not None
    assert reply.usage_metadata["total_tokens"] > 0
    [request] = openai_server.completion_requests
    assert request.headers["authorization"] == f"Bearer {TEST_KEY}"
    assert request.body["model"] == "gpt-test"
    assert request.body["temperature"] == 1.5
    assert request.messages == [{"role": "system", "content": "be brief"}, {"role": "user", "content": "how are you?"}]


# -- streaming -----------------------------------------------------------------------------------


@pytest.fixture
def openai_model_settings(openai_server: FakeOpenAI) -> Settings:
    return memory_settings(openai_base_url=openai_server.base_url, openai_api_key=TEST_KEY)


def test_streamed_content_arrives_in_chunks_and_reassembles(
    openai_server: FakeOpenAI, openai_model_settings: Settings
) -> None:
    # given
    text = "Streaming works one small piece at a time."
    openai_server.script(Reply(text, chunk_size=5))
    model = build_chat_model(ModelSpec("openai", "gpt-test"), config(), openai_model_settings)

    # when
    chunks = list(model.stream("stream please"))

    # then
    assert all(isinstance(chunk, AIMessageChunk) for chunk in chunks)
    pieces = [str(chunk.content) for chunk in chunks if chunk.content]
    assert len(pieces) == len(text) // 5 + 1
    assert "".join(pieces) == text
    whole = joined(chunks)
    assert whole.content == text
    assert whole.response_metadata["finish_reason"] == "stop"
    [request] = openai_server.completion_requests
    assert request.stream
    assert request.body["model"] == "gpt-test"


def test_streamed_tool_call_reassembles(openai_server: FakeOpenAI, openai_model_settings: Settings) -> None:
    # given: the arguments JSON arrives three characters at a time
    openai_server.script(
        Reply(tool_calls=[ToolCall("calculator", {"expression": "(17 + 5) * 3"}, id="call_stream_1")], chunk_size=3)
    )
    model = build_chat_model(ModelSpec("openai", "gpt-test"), config(), openai_model_settings)
    bound = model.bind_tools(build_tools(["calculator"]))

    # when
    chunks: list[Any] = list(bound.stream("what is (17 + 5) * 3?"))

    # then
    argument_pieces = [c for chunk in chunks for c in getattr(chunk, "tool_call_chunks", []) if c.get("args")]
    assert len(argument_pieces) > 3
    whole = joined(chunks)
    assert whole.tool_calls == [
        {"name": "calculator", "args": {"expression": "(17 + 5) * 3"}, "id": "call_stream_1", "type": "tool_call"}
    ]
    assert whole.response_metadata["finish_reason"] == "tool_calls"
    [request] = openai_server.completion_requests
    assert request.stream
    assert set(request.tools) == {"calculator"}


def test_streamed_parallel_tool_calls_and_text_reassemble(
    openai_server: FakeOpenAI, openai_model_settings: Settings
) -> None:
    # given
    openai_server.script(Reply(
        "Let me check.",
        tool_calls=[
            ToolCall("get_current_time", {"timezone": "Asia/Tokyo"}, id="call_t"),
            ToolCall("calculator", json.dumps({"expression": "6*7"}), id="call_c"),
        ],
    ))
    model = build_chat_model(ModelSpec("openai", "gpt-test"), config(), openai_model_settings)

    # when
    whole = joined(model.bind_tools(build_tools(["get_current_time", "calculator"])).stream("time and sum"))

    # then
    assert whole.content == "Let me check."
    assert [(c["id"], c["name"], c["args"]) for c in whole.tool_calls] == [
        ("call_t", "get_current_time", {"timezone": "Asia/Tokyo"}),
        ("call_c", "calculator", {"expression": "6*7"}),
    ]


def test_streamed_usage_is_reported_when_asked_for(
    openai_server: FakeOpenAI, openai_model_settings: Settings
) -> None:
    # given
    openai_server.script(Reply("counted", usage={"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14}))
    model = build_chat_model(ModelSpec("openai", "gpt-test"), config(), openai_model_settings)

    # when
    whole = joined(model.stream("count me", stream_usage=True))

    # then
    assert whole.content == "counted"
    assert whole.usage_metadata is not None
    assert (whole.usage_metadata["input_tokens"], whole.usage_metadata["output_tokens"]) == (11, 3)
    assert openai_server.completion_requests[0].body["stream_options"] == {"include_usage": True}


def test_blank_openai_base_url_means_the_default_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    # given: OPENAI_BASE_URL set but empty, as `OPENAI_BASE_URL=` in a .env or compose file leaves it
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_BASE_URL", "")
    settings = Settings(backend="memory", memory_store=None)
    agent_config = config("openai:gpt-4o-mini")

    # when
    model = build_chat_model(effective_model_spec(agent_config, settings), agent_config, settings)

    # then: treated as unset, as effective_model_spec already treats it
    assert isinstance(model, ChatOpenAI)
    assert model.root_client is not None
    assert str(model.root_client.base_url) == "https://api.openai.com/v1/"


def test_the_openai_key_can_come_from_an_ssm_reference(backend: Backend) -> None:
    # given a key in SSM (as the deployed stack keeps it) and only a reference to it in the environment
    backend.client("ssm").put_parameter(Name="/openbrain/dev/openai-api-key", Value="sk-from-ssm",
                                        Type="SecureString")
    settings = Settings(backend="aws", memory_store=None, openai_api_key_ref="ssm:/openbrain/dev/openai-api-key")
    config = AgentConfig("acme", "p", model="openai:gpt-test")
    # when
    spec = effective_model_spec(config, settings)
    model = build_chat_model(spec, config, settings)
    # then: the aws backend accepts the model, and the client carries the key read from SSM
    assert str(spec) == "openai:gpt-test"
    assert model.openai_api_key.get_secret_value() == "sk-from-ssm"  # type: ignore[attr-defined]


# -- the notice once per session -------------------------------------------------------------------


def test_the_fallback_notice_is_not_printed_when_not_asked_for(
    fresh_notices: None, capsys: pytest.CaptureFixture[str]
) -> None:
    # when: a later turn of a session (a new process: nothing noticed yet)
    spec = effective_model_spec(config("openai:gpt-4o-mini"), memory_settings(), notice=False)

    # then: the same fallback, silently
    assert spec == OFFLINE
    assert capsys.readouterr().err == ""
