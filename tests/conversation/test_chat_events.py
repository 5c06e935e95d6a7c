"""The turn as a stream of events (conversation/chat.py): what the streaming transports send, and what `chat`
collects. Real turns: the offline model streaming token by token, the embedded DynamoDB and EventBridge."""

from __future__ import annotations

import math
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from langchain_core.messages import AIMessage
from support.api import make_client
from support.events import delivered
from support.scripted_chat import ScriptedChatModel, tool_call_reply

from openbrain.api.streaming import chat_stream, coalesce
from openbrain.aws.backend import Backend
from openbrain.conversation.chat import ChatMessage, chat, chat_events, collect
from openbrain.core.errors import NotFoundError, UpstreamError
from openbrain.services.chat import ChatCall
from openbrain.storage import memory_codec
from openbrain.storage.orm import AgentConfig, ChatSession

pytestmark = pytest.mark.integration
CLIENT = "acme"


def _types(events: list[dict[str, Any]]) -> list[str]:
    collapsed: list[str] = []
    for event in events:
        if not collapsed or collapsed[-1] != event["type"] or event["type"] != "token":
            collapsed.append(event["type"])
    return collapsed


@pytest.fixture
def session_id(backend: Backend) -> str:
    AgentConfig(CLIENT, "default", model="offline", icebreaker="Hi!",
                tools=["calculator", "capture_lead"]).save()
    return chat(ChatMessage(client_id=CLIENT, reset=True)).session_id


def test_a_turn_streams_its_tools_and_tokens_and_the_tokens_of_its_last_step_are_the_stored_reply(
        backend: Backend, session_id: str) -> None:
    # when
    events = list(chat_events(ChatMessage(client_id=CLIENT, session_id=session_id, message="what is (17 + 5) * 3")))

    # then: started, the tool, the reply token by token, then the reply and the turn's summary
    assert _types(events) == ["turn.started", "tool.started", "tool.finished", "token", "message", "turn.finished"]
    assert events[0] == {"type": "turn.started", "session_id": session_id, "client_id": CLIENT,
                         "profile_name": "default", "turn": 1}
    started, finished = events[1], events[2]
    assert (started["name"], finished["name"], finished["id"], finished["ok"]) == (
        "calculator", "calculator", started["id"], True)
    assert "66" not in str(finished)  # what the tool told the model stays out of the stream
    tokens = [e for e in events if e["type"] == "token"]
    assert len(tokens) > 3
    reply = events[-2]["text"]
    assert "".join(t["text"] for t in tokens if t["step"] == tokens[-1]["step"]) == reply
    stored = memory_codec.loads(ChatSession.get(CLIENT, session_id).memory)
    assert stored[-1].content == reply
    summary = events[-1]
    assert (summary["session_id"], summary["tool_calls"], summary["stopped"], summary["ended"]) == (
        session_id, ["calculator"], None, False)
    assert summary["usage"]["output_tokens"] > 0
    assert summary["usage"]["total_tokens"] == summary["usage"]["input_tokens"] + summary["usage"]["output_tokens"]


def test_chat_is_the_stream_collected(backend: Backend, session_id: str) -> None:
    # given: two sessions in the same state
    other = chat(ChatMessage(client_id=CLIENT, reset=True)).session_id
    # when: one turn through chat, the same turn streamed and collected
    response = chat(ChatMessage(client_id=CLIENT, session_id=session_id, message="my name is Ada, ada@example.com"))
    streamed = collect(chat_events(ChatMessage(client_id=CLIENT, session_id=other,
                                               message="my name is Ada, ada@example.com")))
    # then: the same reply, apart from the ids
    for reply in (response, streamed):
        assert reply.events[0]["type"] == "lead.captured.v1"
    assert streamed.model_dump(exclude={"session_id", "events"}) == response.model_dump(
        exclude={"session_id", "events"})


def test_the_turn_is_committed_and_published_before_the_reply_is_sent(backend: Backend, session_id: str) -> None:
    # when: the stream is read up to its message
    events = chat_events(ChatMessage(client_id=CLIENT, session_id=session_id, message="I'm Ada, ada@example.com"))
    for event in events:
        if event["type"] == "message":
            break
    # then: the session holds the turn and the lead's event has reached the bus already
    assert ChatSession.get(CLIENT, session_id).turn_count == 1
    assert [e["detail-type"] for e in delivered(backend)] == ["lead.captured.v1"]


def test_a_reset_streams_the_icebreaker(backend: Backend, session_id: str) -> None:
    events = list(chat_events(ChatMessage(client_id=CLIENT, reset=True)))
    assert [e["type"] for e in events] == ["turn.started", "message", "turn.finished"]
    assert events[0]["turn"] == 0 and events[1]["text"] == "Hi!"
    assert ChatSession.get(CLIENT, events[0]["session_id"]).turn_count == 0


def test_an_unknown_session_fails_when_the_stream_is_read(backend: Backend) -> None:
    events = chat_events(ChatMessage(client_id=CLIENT, session_id="01M8Z68B0RYKWAXR0B87P345A2", message="hi"))
    with pytest.raises(NotFoundError):
        next(events)


def test_a_turn_stopped_by_its_deadline_sends_the_stop_as_a_step_of_its_own(backend: Backend,
                                                                           session_id: str) -> None:
    # given: a model that never answers within the turn's deadline
    model = ScriptedChatModel(replies=[AIMessage("too late")], delay=2.0)
    session = ChatSession.get(CLIENT, session_id)
    from openbrain.conversation.chat import session_events

    # when
    events = list(session_events(session, "hello", backend, model=model, deadline=time.monotonic() + 0.3))

    # then: the stop message is the reply, streamed as its own step
    tokens = [e for e in events if e["type"] == "token"]
    assert events[-2]["text"].startswith("I had to stop here")
    assert "".join(t["text"] for t in tokens if t["step"] == tokens[-1]["step"]) == events[-2]["text"]
    assert events[-1]["stopped"] == "max_execution_time"


def test_chat_stream_ends_in_an_error_event_with_the_http_apis_code(backend: Backend, session_id: str) -> None:
    client, _ = make_client(CLIENT, ["https://acme.example"])
    call = ChatCall(deadline=math.inf)
    cases = {
        "{not json": "invalid_json",
        "[1, 2]": "invalid_input",
        '{"sessionId": "01M8Z68B0RYKWAXR0B87P345A2", "message": "hi"}': "not_found",
        '{"clientId": "globex", "message": "hi"}': "forbidden",
        '{"message": "hi", "agentConfigOverrides": {"model": "openai:gpt-4o"}}': "forbidden",
        '{"reset": "yes"}': "invalid_input",
    }
    for body, code in cases.items():
        events = list(chat_stream(client, body, call, backend))
        assert events[-1]["type"] == "error" and events[-1]["code"] == code, (body, events)
        assert set(events[-1]) == {"type", "code", "message"}


def test_a_provider_failure_in_the_turn_is_raised_after_turn_started(backend: Backend, session_id: str) -> None:
    from openbrain.conversation.chat import session_events

    model = ScriptedChatModel(error=ConnectionError("refused"))
    events = session_events(ChatSession.get(CLIENT, session_id), "hello", backend, model=model)
    assert next(events)["type"] == "turn.started"
    with pytest.raises(UpstreamError):
        next(events)
    assert ChatSession.get(CLIENT, session_id).turn_count == 0  # nothing stored


def test_a_scripted_tool_call_shows_as_started_and_finished(backend: Backend, session_id: str) -> None:
    from openbrain.conversation.chat import session_events

    model = ScriptedChatModel(replies=[tool_call_reply("calculator", {"expression": "6*7"}), AIMessage("42")])
    events = list(session_events(ChatSession.get(CLIENT, session_id), "six times seven", backend, model=model))
    assert [(e["type"], e.get("name")) for e in events if e["type"].startswith("tool.")] == [
        ("tool.started", "calculator"), ("tool.finished", "calculator")]


# -- coalescing ---------------------------------------------------------------------------------------------------

token_runs = st.lists(st.tuples(st.integers(1, 3), st.text(min_size=1, max_size=3), st.floats(0, 0.2)),
                      max_size=60)


@settings(max_examples=200, deadline=None)
@given(runs=token_runs)
def test_coalescing_keeps_every_steps_text_and_sends_at_most_one_token_event_per_interval(
        runs: list[tuple[int, str, float]]) -> None:
    # given: token events of non-decreasing steps, each after a pause, then the message
    now = [0.0]
    events: list[dict[str, Any]] = []
    step = 1
    for bump, text, pause in runs:
        step = max(step, bump)
        events.append({"type": "token", "text": text, "step": step, "pause": pause})
    events.append({"type": "message", "text": "x"})

    def timed() -> Any:
        for event in events:
            now[0] += event.pop("pause", 0.0)
            yield event

    # when
    out = list(coalesce(timed(), interval=0.05, clock=lambda: now[0]))

    # then: the same text per step, in order, the message last; token events no closer than the interval
    # except where a step ends (a step's last piece goes out with whatever ends it)
    def texts(seq: list[dict[str, Any]]) -> dict[int, str]:
        joined: dict[int, str] = {}
        for e in seq:
            if e["type"] == "token":
                joined[e["step"]] = joined.get(e["step"], "") + e["text"]
        return joined

    assert texts(out) == texts(events)
    assert out[-1] == {"type": "message", "text": "x"}
    steps = len({e["step"] for e in events if e["type"] == "token"})
    assert sum(e["type"] == "token" for e in out) <= now[0] / 0.05 + 2 * steps + 1
