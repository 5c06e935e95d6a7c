"""The `offline` model: deterministic tool calls and replies, directly and through the chat turn."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.runnables import Runnable

from openbrain.aws.backend import Backend
from openbrain.conversation.agents.offline import OFFLINE_METADATA, OfflineChatModel
from openbrain.conversation.chat import ChatMessage, ChatResponse, chat
from openbrain.conversation.tools.registry import build_tools
from openbrain.domain.profile import DEFAULT_TOOLS
from openbrain.storage import memory_codec
from openbrain.storage.orm.chat_session import ChatSession
from openbrain.storage.orm.lead import Lead


def offline(tools: tuple[str, ...] | list[str] = DEFAULT_TOOLS) -> Runnable[LanguageModelInput, AIMessage]:
    return OfflineChatModel().bind_tools(build_tools(tools))


def reply(messages: list[BaseMessage], tools: tuple[str, ...] | list[str] = DEFAULT_TOOLS) -> AIMessage:
    message = offline(tools).invoke(messages)
    assert isinstance(message, AIMessage)
    return message


def calls(message: AIMessage) -> list[tuple[str, dict[str, Any]]]:
    return [(call["name"], call["args"]) for call in message.tool_calls]


# -- the model on its own ------------------------------------------------------------------------


def test_time_in_a_city_calls_get_current_time_with_its_timezone() -> None:
    message = reply([HumanMessage("what time is it in Tokyo")])

    assert calls(message) == [("get_current_time", {"timezone": "Asia/Tokyo"})]
    assert message.content == ""


def test_time_without_a_place_asks_for_utc() -> None:
    assert calls(reply([HumanMessage("What time is it?")])) == [("get_current_time", {"timezone": "UTC"})]


def test_name_and_email_call_capture_lead() -> None:
    message = reply([HumanMessage("my name is Ada Lovelace, email ada@example.com")])

    assert calls(message) == [("capture_lead", {"full_name": "Ada Lovelace", "email": "ada@example.com"})]


def test_phone_number_is_captured_too() -> None:
    message = reply([HumanMessage("I'm Grace Hopper, call me on +1 555 010 9999")])

    assert calls(message) == [("capture_lead", {"full_name": "Grace Hopper", "phone": "+1 555 010 9999"})]


@pytest.mark.parametrize(
    ("text", "expression"),
    [("what is 6*7", "6*7"), ("what is (17 + 5) * 3?", "(17 + 5) * 3"), ("2.5 / 0.5 please", "2.5 / 0.5")],
)
def test_arithmetic_calls_the_calculator(text: str, expression: str) -> None:
    assert calls(reply([HumanMessage(text)])) == [("calculator", {"expression": expression})]


def test_conversion_to_utc_calls_convert_to_from_utc() -> None:
    message = reply([HumanMessage("convert 14:30 London to UTC")])

    assert calls(message) == [
        ("convert_to_from_utc", {"time": "14:30", "timezone": "Europe/London", "direction": "to_utc"})
    ]


def test_goodbye_calls_end_conversation() -> None:
    message = reply([HumanMessage("ok, goodbye!")])

    assert [name for name, _ in calls(message)] == ["end_conversation"]


def test_a_tool_that_is_not_bound_is_not_called() -> None:
    # given: a profile without the calculator
    tools = ["get_current_time", "capture_lead", "end_conversation"]

    # when
    message = reply([HumanMessage("what is 6*7")], tools)

    # then
    assert message.tool_calls == []
    assert "6*7" in message.content


def test_unbound_model_calls_no_tools() -> None:
    message = OfflineChatModel().invoke([HumanMessage("what time is it in Tokyo")])

    assert message.tool_calls == []


def test_reply_after_tool_results_answers_from_them() -> None:
    # given
    asked = reply([HumanMessage("what is 6*7")])
    [call] = asked.tool_calls
    result = ToolMessage("6*7 = 42", tool_call_id=call["id"], name="calculator")

    # when
    message = reply([HumanMessage("what is 6*7"), asked, result])

    # then
    assert message.tool_calls == []
    assert message.content == "6*7 = 42"


def test_reply_without_a_tool_shows_it_sees_the_history() -> None:
    # given
    history: list[BaseMessage] = [
        AIMessage("Hi! How can I help?"),
        HumanMessage("My name is Ada Lovelace"),
        AIMessage("Nice to meet you."),
        HumanMessage("tell me something"),
    ]

    # when
    message = reply(history)

    # then
    assert message.tool_calls == []
    assert "tell me something" in message.content
    assert "My name is Ada Lovelace" in message.content
    assert "I remember your name is Ada Lovelace" in message.content


def test_every_reply_carries_offline_metadata() -> None:
    for text in ("hello", "what is 1+1"):
        assert reply([HumanMessage(text)]).response_metadata == {"model_name": "offline", "offline": True}
    assert OFFLINE_METADATA == {"model_name": "offline", "offline": True}


@pytest.mark.parametrize("text", ["what time is it in Tokyo", "hello there", "what is 6*7 and then goodbye"])
def test_same_input_gives_the_same_output_and_tool_call_ids(text: str) -> None:
    history: list[BaseMessage] = [AIMessage("Hi!"), HumanMessage(text)]

    first, second = reply(history), reply(list(history))

    assert first.content == second.content
    assert first.tool_calls == second.tool_calls
    assert len({call["id"] for call in first.tool_calls}) == len(first.tool_calls)


def test_tool_call_ids_differ_between_turns() -> None:
    first = reply([HumanMessage("what is 6*7")])
    later = reply([HumanMessage("what is 6*7"), first, ToolMessage("42", tool_call_id=first.tool_calls[0]["id"]),
                   AIMessage("42"), HumanMessage("what is 6*7")])

    assert first.tool_calls[0]["id"] != later.tool_calls[0]["id"]


# -- through the chat turn -----------------------------------------------------------------------

OFFLINE = {"model": "offline"}


def ask(backend: Backend, message: str, session_id: str | None = None, **overrides: Any) -> ChatResponse:
    request = ChatMessage(message=message, session_id=session_id, agent_config_overrides={**OFFLINE, **overrides})
    return chat(request, backend)


@pytest.mark.integration
def test_chat_tells_the_time_in_tokyo(backend: Backend) -> None:
    response = ask(backend, "what time is it in Tokyo?")

    assert response.model == "offline"
    assert response.tool_calls == ["get_current_time"]
    assert response.message.startswith("The current time in Asia/Tokyo is ")


@pytest.mark.integration
def test_chat_captures_a_lead(backend: Backend) -> None:
    # when
    response = ask(backend, "my name is Ada Lovelace, email ada@example.com")

    # then
    assert response.tool_calls == ["capture_lead"]
    assert [event["type"] for event in response.events] == ["lead.captured.v1"]
    [lead] = Lead.get_all("public")
    assert (lead.full_name, lead.email, lead.first_name, lead.last_name) == (
        "Ada Lovelace", "ada@example.com", "Ada", "Lovelace"
    )
    assert lead.session_id == response.session_id
    assert ChatSession.get("public", response.session_id).lead_id == lead.lead_id


@pytest.mark.integration
def test_chat_calculates(backend: Backend) -> None:
    response = ask(backend, "what is (17 + 5) * 3?")

    assert response.tool_calls == ["calculator"]
    assert response.message == "(17 + 5) * 3 = 66"


@pytest.mark.integration
def test_chat_goodbye_ends_the_session(backend: Backend) -> None:
    # given
    first = ask(backend, "hello")

    # when
    response = ask(backend, "goodbye", session_id=first.session_id)

    # then
    assert response.tool_calls == ["end_conversation"]
    assert response.ended
    assert [event["type"] for event in response.events] == ["conversation.ended.v1"]
    assert ChatSession.get("public", first.session_id).ended


@pytest.mark.integration
def test_chat_does_not_call_a_tool_the_profile_lacks(backend: Backend) -> None:
    response = ask(backend, "what is 6*7", tools=["get_current_time"])

    assert response.tool_calls == []
    assert "6*7" in response.message


@pytest.mark.integration
def test_chat_remembers_earlier_turns(backend: Backend) -> None:
    # given
    first = ask(backend, "My name is Ada Lovelace")

    # when
    second = ask(backend, "do you remember me?", session_id=first.session_id)

    # then
    assert 'before it you said "My name is Ada Lovelace"' in second.message
    assert "I remember your name is Ada Lovelace" in second.message


@pytest.mark.integration
def test_chat_stores_offline_metadata_on_replies(backend: Backend) -> None:
    response = ask(backend, "what is 6*7")

    stored = memory_codec.loads(ChatSession.get("public", response.session_id).memory)
    answers = [m for m in stored if isinstance(m, AIMessage)][1:]  # after the icebreaker
    assert len(answers) == 2
    assert all(m.response_metadata == {"model_name": "offline", "offline": True} for m in answers)


@pytest.mark.integration
def test_chat_is_deterministic(backend: Backend) -> None:
    first = ask(backend, "what is 6*7")
    second = ask(backend, "what is 6*7")

    def transcript(response: ChatResponse) -> list[tuple[str, Any, Any]]:
        stored = memory_codec.loads(ChatSession.get("public", response.session_id).memory)
        return [(type(m).__name__, m.content, getattr(m, "tool_calls", None)) for m in stored]

    assert first.session_id != second.session_id
    assert first.message == second.message
    assert transcript(first) == transcript(second)


@pytest.mark.integration
def test_default_openai_profile_without_a_key_runs_offline(backend: Backend) -> None:
    # when: the default profile (openai:gpt-4o-mini) on the memory backend with no OPENAI_API_KEY
    response = chat(ChatMessage(message="what is 2+2"), backend)

    # then
    assert response.model == "offline"
    assert response.message == "2+2 = 4"
