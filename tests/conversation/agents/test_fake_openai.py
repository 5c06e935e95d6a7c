"""The fake OpenAI server refuses what OpenAI refuses, so tests that pass against it mean something."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import openai
import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_openai import ChatOpenAI
from support.fake_openai import TEST_KEY, FakeOpenAI, Reply, ToolCall


def client(server: FakeOpenAI) -> ChatOpenAI:
    return ChatOpenAI(model="gpt-test", api_key=TEST_KEY, base_url=server.base_url, max_retries=0)


def post(server: FakeOpenAI, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        f"{server.base_url}/chat/completions", data=json.dumps(body).encode(), method="POST",
        headers={"content-type": "application/json", **headers},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # loopback only
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as failure:
        return failure.code, json.loads(failure.read())


def test_assistant_tool_call_without_its_result_is_refused_with_400(openai_server: FakeOpenAI) -> None:
    # given: a transcript where a tool call never got its ToolMessage
    broken = [
        HumanMessage("what is 6*7"),
        AIMessage("", tool_calls=[{"name": "calculator", "args": {"expression": "6*7"}, "id": "call_lost"}]),
        HumanMessage("hello?"),
    ]

    # when / then
    with pytest.raises(openai.BadRequestError, match="call_lost"):
        client(openai_server).invoke(broken)
    assert len(openai_server.requests) == 1  # refused before taking a scripted reply


def test_tool_result_without_its_call_is_refused_with_400(openai_server: FakeOpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="role 'tool'"):
        client(openai_server).invoke([HumanMessage("hi"), ToolMessage("42", tool_call_id="call_unknown")])


def test_complete_tool_transcript_is_accepted(openai_server: FakeOpenAI) -> None:
    openai_server.script(Reply("42 it is."))
    transcript = [
        HumanMessage("what is 6*7"),
        AIMessage("", tool_calls=[{"name": "calculator", "args": {"expression": "6*7"}, "id": "call_1"}]),
        ToolMessage("6*7 = 42", tool_call_id="call_1"),
    ]

    assert client(openai_server).invoke(transcript).content == "42 it is."


def test_request_without_a_bearer_key_is_refused_with_401(openai_server: FakeOpenAI) -> None:
    status, body = post(openai_server, {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}, {})

    assert status == 401
    assert "API key" in body["error"]["message"]


def test_non_streaming_reply_is_in_the_openai_wire_format(openai_server: FakeOpenAI) -> None:
    # given
    openai_server.script(Reply("Hi."))

    # when
    status, body = post(
        openai_server, {"model": "gpt-test", "messages": [{"role": "user", "content": "hello"}]},
        {"authorization": f"Bearer {TEST_KEY}"},
    )

    # then
    assert status == 200
    assert body["object"] == "chat.completion"
    assert body["model"] == "gpt-test"
    assert body["choices"] == [{
        "index": 0, "logprobs": None, "finish_reason": "stop",
        "message": {"role": "assistant", "content": "Hi.", "refusal": None},
    }]
    assert set(body["usage"]) == {"prompt_tokens", "completion_tokens", "total_tokens"}


def test_body_that_is_not_a_chat_request_is_400(openai_server: FakeOpenAI) -> None:
    status, body = post(openai_server, {}, {"authorization": f"Bearer {TEST_KEY}"})

    assert status == 400
    assert body["error"]["type"] == "invalid_request_error"


def test_unknown_path_is_404(openai_server: FakeOpenAI) -> None:
    request = urllib.request.Request(f"{openai_server.base_url}/embeddings", data=b"{}", method="POST")

    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request, timeout=5)  # loopback only

    assert raised.value.code == 404


CALCULATOR = {"type": "function", "function": {"name": "calculator", "description": "evaluate arithmetic",
              "parameters": {"type": "object", "properties": {"expression": {"type": "string"}},
                             "required": ["expression"]}}}


def test_the_real_chat_openai_streams_text_deltas_over_sse(openai_server: FakeOpenAI) -> None:
    openai_server.script(Reply("The answer is forty-two, exactly.", chunk_size=4))

    chunks = list(client(openai_server).stream("what is 6*7"))

    # then: a streamed request, answered in many pieces that join into the reply
    assert openai_server.completion_requests[-1].stream
    assert len([chunk for chunk in chunks if chunk.content]) >= 8
    assert "".join(str(chunk.content) for chunk in chunks) == "The answer is forty-two, exactly."


def test_the_real_chat_openai_streams_tool_call_argument_deltas(openai_server: FakeOpenAI) -> None:
    openai_server.script(Reply(tool_calls=[ToolCall("calculator", {"expression": "(17 + 5) * 3"}, id="call_1")],
                               chunk_size=4))

    chunks = list(client(openai_server).bind_tools([CALCULATOR]).stream("what is (17 + 5) * 3"))

    # then: the arguments arrive in several deltas, and the chunks add up to the one tool call
    assert len([piece for chunk in chunks for piece in chunk.tool_call_chunks if piece.get("args")]) >= 3
    whole = chunks[0]
    for chunk in chunks[1:]:
        whole += chunk
    assert whole.tool_calls == [{"name": "calculator", "args": {"expression": "(17 + 5) * 3"}, "id": "call_1",
                                 "type": "tool_call"}]
