"""The chat turn with an `openai:*` model: the real ChatOpenAI client against the local fake server."""

from __future__ import annotations

import json
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from support.fake_openai import TEST_KEY, FakeOpenAI, Reply, ToolCall

from openbrain.aws.backend import Backend
from openbrain.conversation.chat import ChatMessage, ChatResponse, chat
from openbrain.conversation.tools.registry import TOOLS
from openbrain.storage import memory_codec
from openbrain.storage.orm.chat_session import ChatSession

pytestmark = pytest.mark.integration

SYSTEM = "You are the test bot. Answer in one sentence."
ICEBREAKER = "Hello, test bot here."
OVERRIDES: dict[str, Any] = {
    "model": "openai:gpt-test",
    "temperature": 0.25,
    "system_message": SYSTEM,
    "icebreaker": ICEBREAKER,
    "tools": ["calculator", "get_current_time"],
}


def ask(backend: Backend, message: str, session_id: str | None = None) -> ChatResponse:
    return chat(ChatMessage(message=message, session_id=session_id, agent_config_overrides=OVERRIDES), backend)


def test_plain_reply_comes_from_the_server(openai_server: FakeOpenAI, openai_backend: Backend) -> None:
    # given
    openai_server.script(Reply("Hi there, from the fake model."))

    # when
    response = ask(openai_backend, "hello")

    # then
    assert response.message == "Hi there, from the fake model."
    assert response.model == "openai:gpt-test"
    assert response.tool_calls == []
    assert response.stopped is None
    assert len(openai_server.completion_requests) == 1


def test_request_carries_key_model_temperature_system_message_history_and_tool_schemas(
    openai_server: FakeOpenAI, openai_backend: Backend
) -> None:
    # given
    openai_server.script(Reply("ok"))

    # when
    ask(openai_backend, "hello")

    # then
    [request] = openai_server.completion_requests
    assert request.headers["authorization"] == f"Bearer {TEST_KEY}"
    assert request.body["model"] == "gpt-test"
    assert request.body["temperature"] == 0.25
    assert not request.stream
    assert request.messages == [
        {"role": "system", "content": SYSTEM},
        {"role": "assistant", "content": ICEBREAKER},
        {"role": "user", "content": "hello"},
    ]
    assert set(request.tools) == {"calculator", "get_current_time"}
    for name, function in request.tools.items():
        schema = TOOLS[name].json_schema()
        assert function["description"] == TOOLS[name].description
        assert function["parameters"]["type"] == "object"
        assert function["parameters"]["properties"].keys() == schema["properties"].keys()
        assert function["parameters"].get("required", []) == schema.get("required", [])


def test_tool_call_runs_the_tool_and_sends_its_result_back(
    openai_server: FakeOpenAI, openai_backend: Backend
) -> None:
    # given: the model first asks for the calculator, then answers
    openai_server.script(
        Reply(tool_calls=[ToolCall("calculator", {"expression": "6*7"}, id="call_calc_1")]),
        Reply("6 times 7 is 42."),
    )

    # when
    response = ask(openai_backend, "what is 6 times 7?")

    # then
    assert response.message == "6 times 7 is 42."
    assert response.tool_calls == ["calculator"]
    first, second = openai_server.completion_requests
    assert first.messages[-1] == {"role": "user", "content": "what is 6 times 7?"}
    assistant, tool_result = second.messages[-2:]
    assert assistant["role"] == "assistant"
    assert assistant["tool_calls"] == [
        {"id": "call_calc_1", "type": "function",
         "function": {"name": "calculator", "arguments": json.dumps({"expression": "6*7"})}},
    ]
    assert tool_result == {"role": "tool", "tool_call_id": "call_calc_1", "content": "6*7 = 42"}
    assert second.messages[0] == {"role": "system", "content": SYSTEM}
    assert second.body["model"] == "gpt-test"
    assert set(second.tools) == {"calculator", "get_current_time"}


def test_tool_turn_is_stored_in_the_session(openai_server: FakeOpenAI, openai_backend: Backend) -> None:
    # given
    openai_server.script(
        Reply(tool_calls=[ToolCall("get_current_time", {"timezone": "Asia/Tokyo"}, id="call_time_1")]),
        Reply("It is late in Tokyo."),
    )

    # when
    response = ask(openai_backend, "what time is it in Tokyo?")

    # then
    session = ChatSession.get(response.client_id, response.session_id)
    stored = memory_codec.loads(session.memory)
    assert [type(m) for m in stored] == [AIMessage, HumanMessage, AIMessage, ToolMessage, AIMessage]
    icebreaker, question, asked, result, answer = stored
    assert isinstance(asked, AIMessage)
    assert isinstance(result, ToolMessage)
    assert (icebreaker.content, question.content) == (ICEBREAKER, "what time is it in Tokyo?")
    assert [(c["id"], c["name"], c["args"]) for c in asked.tool_calls] == [
        ("call_time_1", "get_current_time", {"timezone": "Asia/Tokyo"})
    ]
    assert result.tool_call_id == "call_time_1"
    assert "Asia/Tokyo" in str(result.content)
    assert answer.content == "It is late in Tokyo."
    assert int(session.turn_count) == 1


def test_next_turn_sends_the_earlier_conversation(openai_server: FakeOpenAI, openai_backend: Backend) -> None:
    # given: a first turn with a tool call
    openai_server.script(
        Reply(tool_calls=[ToolCall("calculator", {"expression": "6*7"}, id="call_calc_1")]),
        Reply("It is 42."),
        Reply("You asked me about 6 times 7."),
    )
    first = ask(openai_backend, "what is 6 times 7?")

    # when
    second = ask(openai_backend, "what did I ask you?", session_id=first.session_id)

    # then
    assert second.session_id == first.session_id
    assert second.message == "You asked me about 6 times 7."
    request = openai_server.completion_requests[-1]
    assert [m["role"] for m in request.messages] == ["system", "assistant", "user", "assistant", "tool", "assistant",
                                                     "user"]
    assert request.messages[2] == {"role": "user", "content": "what is 6 times 7?"}
    assert request.messages[4]["tool_call_id"] == "call_calc_1"
    assert request.messages[5] == {"role": "assistant", "content": "It is 42."}
    assert request.messages[6] == {"role": "user", "content": "what did I ask you?"}
    assert int(ChatSession.get(first.client_id, first.session_id).turn_count) == 2


def test_parallel_tool_calls_each_get_their_result(openai_server: FakeOpenAI, openai_backend: Backend) -> None:
    # given
    openai_server.script(
        Reply(tool_calls=[
            ToolCall("calculator", {"expression": "2+2"}, id="call_a"),
            ToolCall("get_current_time", {"timezone": "UTC"}, id="call_b"),
        ]),
        Reply("Four, and it is some time in UTC."),
    )

    # when
    response = ask(openai_backend, "what is 2+2 and what time is it?")

    # then
    assert sorted(response.tool_calls) == ["calculator", "get_current_time"]
    results = {m["tool_call_id"]: m["content"] for m in openai_server.completion_requests[1].messages
               if m["role"] == "tool"}
    assert results["call_a"] == "2+2 = 4"
    assert results["call_b"].startswith("The current time in UTC is ")


def test_tool_the_profile_does_not_offer_is_answered_with_an_error_not_run(
    openai_server: FakeOpenAI, openai_backend: Backend
) -> None:
    # given: the model asks for a tool that exists in the registry but is not in this profile
    openai_server.script(
        Reply(tool_calls=[ToolCall("capture_lead", {"email": "ada@example.com"}, id="call_lead")]),
        Reply("Sorry, I cannot save that."),
    )

    # when
    response = ask(openai_backend, "save my email ada@example.com")

    # then
    assert response.tool_calls == []
    assert response.events == []
    [tool_result] = [m for m in openai_server.completion_requests[1].messages if m["role"] == "tool"]
    assert tool_result["tool_call_id"] == "call_lead"
    assert "capture_lead" in tool_result["content"]
