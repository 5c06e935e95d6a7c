"""The offline model streams: token chunks, tool calls as chunks, usage, tool_choice, and an agent streaming it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage, ToolMessage

from openbrain.conversation.agents.offline import OfflineChatModel, tokens
from openbrain.conversation.agents.runner import compiled_agent
from openbrain.conversation.tools.context import ToolContext
from openbrain.conversation.tools.registry import build_tools
from openbrain.domain.profile import DEFAULT_TOOLS


def streamed(model: Any, messages: Sequence[BaseMessage]) -> list[AIMessageChunk]:
    chunks = list(model.stream(messages))
    assert all(isinstance(chunk, AIMessageChunk) for chunk in chunks)
    return chunks


def joined(chunks: list[AIMessageChunk]) -> AIMessageChunk:
    full = chunks[0]
    for chunk in chunks[1:]:
        full = full + chunk
    return full


def calls(message: AIMessage) -> list[tuple[str, dict[str, Any]]]:
    return [(call["name"], call["args"]) for call in message.tool_calls]


def test_tokens_join_back_into_the_text() -> None:
    for text in ("", "  lead and trail  ", 'You said: "6*7".  Twice,\nreally? ', "你好 ok"):
        assert "".join(tokens(text)) == text
    assert tokens("(17 + 5) * 3 = 66") == ["(", "17", " +", " 5", ")", " *", " 3", " =", " 66"]


def test_a_text_reply_streams_token_by_token_and_joins_into_the_invoked_reply() -> None:
    # given
    model, history = OfflineChatModel(), [HumanMessage("hello there")]

    # when
    chunks = streamed(model, history)

    # then
    text = [chunk.text for chunk in chunks if chunk.text]
    assert len(text) > 10
    assert "".join(text) == model.invoke(history).content
    assert chunks[-1].chunk_position == "last"
    assert chunks[-1].response_metadata == {"model_name": "offline", "offline": True}
    assert [chunk.usage_metadata is not None for chunk in chunks].count(True) == 1


def test_a_tool_call_streams_as_tool_call_chunks() -> None:
    # given
    model = OfflineChatModel().bind_tools(build_tools(DEFAULT_TOOLS))
    history = [HumanMessage("what is (17 + 5) * 3?")]

    # when
    chunks = streamed(model, history)

    # then: the name and id first, then the JSON arguments in several pieces, and no text
    pieces = [piece for chunk in chunks for piece in chunk.tool_call_chunks]
    assert pieces[0]["name"] == "calculator" and pieces[0]["id"] and pieces[0]["args"] == ""
    assert len(pieces) > 5 and all(piece["name"] is None and piece["id"] is None for piece in pieces[1:])
    full = joined(chunks)
    assert full.content == ""
    assert full.tool_calls == model.invoke(history).tool_calls
    assert calls(full) == [("calculator", {"expression": "(17 + 5) * 3"})]


def test_usage_metadata_counts_words_and_other_characters() -> None:
    # given: "what is 6*7" is 5 tokens; the call is "calculator" (1) and {"expression": "6*7"} (11)
    model = OfflineChatModel().bind_tools(build_tools(["calculator"]))

    # when
    asked = model.invoke([HumanMessage("what is 6*7")])
    answered = model.invoke([HumanMessage("what is 6*7"), asked, ToolMessage("6*7 = 42", tool_call_id="c1")])

    # then
    assert asked.usage_metadata == {"input_tokens": 5, "output_tokens": 12, "total_tokens": 17}
    assert answered.content == "6*7 = 42"
    assert answered.usage_metadata == {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15}


@pytest.mark.parametrize(
    ("tool_choice", "text", "expected"),
    [
        ("auto", "what is 6*7 and then goodbye", ["calculator", "end_conversation"]),
        ("none", "what is 6*7 and then goodbye", []),
        ("end_conversation", "what is 6*7 and then goodbye", ["end_conversation"]),
        ({"type": "function", "function": {"name": "calculator"}}, "what is 6*7 and then goodbye", ["calculator"]),
        ("any", "hello", ["get_current_time"]),
        ("required", "what is 6*7", ["calculator"]),
        ("end_conversation", "hello", ["end_conversation"]),
    ],
)
def test_tool_choice_is_honoured(tool_choice: Any, text: str, expected: list[str]) -> None:
    model = OfflineChatModel().bind_tools(build_tools(DEFAULT_TOOLS), tool_choice=tool_choice)

    message = model.invoke([HumanMessage(text)])

    assert [name for name, _ in calls(message)] == expected


def test_a_forced_choice_it_has_no_arguments_for_answers_in_text() -> None:
    model = OfflineChatModel().bind_tools(build_tools(["calculator"]), tool_choice="any")

    message = model.invoke([HumanMessage("hello")])

    assert message.tool_calls == []
    assert message.text.startswith('You said: "hello".')


def test_a_tool_choice_naming_no_bound_tool_is_refused_at_bind_time() -> None:
    with pytest.raises(ValueError, match="names none of the bound tools"):
        OfflineChatModel().bind_tools(build_tools(["calculator"]), tool_choice="get_current_time")


def test_stop_and_max_tokens_cut_the_text_reply() -> None:
    history = [HumanMessage("hello")]

    assert OfflineChatModel().invoke(history, stop=["."]).content == 'You said: "hello"'
    assert OfflineChatModel(stop=[":"]).invoke(history).content == "You said"
    assert OfflineChatModel(max_tokens=3).invoke(history).content == "You said:"


def test_traces_name_the_provider_and_model() -> None:
    params = OfflineChatModel(max_tokens=10)._get_ls_params(stop=["x"])

    assert params == {"ls_provider": "openbrain", "ls_model_name": "offline", "ls_model_type": "chat",
                      "ls_max_tokens": 10, "ls_stop": ["x"]}


# -- the agent, streamed -------------------------------------------------------------------------


def stream_agent(text: str) -> tuple[list[AIMessageChunk], list[BaseMessage]]:
    """The model's chunks (stream_mode="messages") and the final messages of one agent run over `text`."""
    agent = compiled_agent(OfflineChatModel(), tuple(DEFAULT_TOOLS), None, 5, 30.0)
    context = ToolContext(client_id="public", session_id="session-1")
    context.start_clock(30.0)
    chunks: list[AIMessageChunk] = []
    final: list[BaseMessage] = []
    for mode, part in agent.stream({"messages": [HumanMessage(text)]}, context=context,
                                   stream_mode=["messages", "values"]):
        if mode == "messages" and isinstance(part[0], AIMessageChunk):
            chunks.append(part[0])
        elif mode == "values":
            final = part["messages"]
    return chunks, final


def test_the_agent_streams_the_offline_model_token_by_token() -> None:
    # when
    chunks, final = stream_agent("hello")

    # then: several token chunks, and together they are the final reply
    text = [chunk.text for chunk in chunks if chunk.text]
    assert len(text) > 10
    assert isinstance(final[-1], AIMessage)
    assert "".join(text) == final[-1].content


def test_the_agent_streams_tool_calls_then_the_answer() -> None:
    # when
    chunks, final = stream_agent("what is (17 + 5) * 3?")

    # then
    assert any(chunk.tool_call_chunks for chunk in chunks)
    text = [chunk.text for chunk in chunks if chunk.text]
    assert len(text) > 3
    assert final[-1].content == "(17 + 5) * 3 = 66"
    assert "".join(text) == final[-1].content
