"""A failing model provider ends the turn with an Upstream error and leaves the session as it was."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from support.backend import installed_backend
from support.fake_openai import FakeOpenAI, Reply, ToolCall, error

from openbrain.aws.backend import Backend
from openbrain.conversation.chat import ChatMessage, ChatResponse, chat
from openbrain.core.errors import UpstreamError
from openbrain.core.settings import Settings
from openbrain.storage import memory_codec
from openbrain.storage.orm.chat_session import ChatSession
from openbrain.storage.orm.lead import Lead

pytestmark = pytest.mark.integration

OVERRIDES: dict[str, Any] = {"model": "openai:gpt-test", "tools": ["calculator"], "max_execution_time": 1}


def ask(backend: Backend, message: str, session_id: str | None = None) -> ChatResponse:
    return chat(ChatMessage(message=message, session_id=session_id, agent_config_overrides=OVERRIDES), backend)


def stored(response: ChatResponse) -> dict[str, Any]:
    """What a failed turn must not change."""
    session = ChatSession.get(response.client_id, response.session_id)
    return {
        "version": session.version,
        "turn_count": int(session.turn_count),
        "memory": session.memory,
        "updated_at": session.updated_at,
        "expires_at": session.expires_at,
        "recent_events": session.recent_events,
        "ended_at": session.ended_at,
    }


@pytest.fixture
def started(openai_server: FakeOpenAI, openai_backend: Backend) -> ChatResponse:
    """A session with one answered turn; the server's script is then empty."""
    openai_server.script(Reply("first answer"))
    response = ask(openai_backend, "first question")
    assert response.message == "first answer"
    return response


@pytest.mark.parametrize("status", [500, 503, 429])
def test_server_error_is_upstream_error_and_session_is_unchanged(
    openai_server: FakeOpenAI, openai_backend: Backend, started: ChatResponse, status: int
) -> None:
    # given
    before = stored(started)
    openai_server.always(error(status))

    # when
    with pytest.raises(UpstreamError) as raised:
        ask(openai_backend, "second question", session_id=started.session_id)

    # then
    assert type(raised.value) is UpstreamError
    assert f"HTTP {status}" in raised.value.message
    assert "fake error" not in raised.value.message  # the provider's own words stay out of the message
    assert stored(started) == before
    assert len(openai_server.completion_requests) == 1 + 2  # the first turn, then one try and one retry


@pytest.mark.parametrize("status", [200, 502])
def test_a_provider_answering_html_is_upstream_error_and_session_is_unchanged(
    openai_server: FakeOpenAI, openai_backend: Backend, started: ChatResponse, status: int
) -> None:
    # given: something in front of the provider answers a web page (a captive portal: 200; a proxy: 502)
    before = stored(started)
    openai_server.always(Reply(status=status, raw=b"<html><body>Service unavailable</body></html>"))

    # when
    with pytest.raises(UpstreamError) as raised:
        ask(openai_backend, "second question", session_id=started.session_id)

    # then: the provider is blamed (502 at the API), not our code (500), and nothing changed
    assert type(raised.value) is UpstreamError
    assert "model provider" in raised.value.message
    assert stored(started) == before


def test_server_error_on_the_first_message_stores_no_session(
    openai_server: FakeOpenAI, openai_backend: Backend
) -> None:
    # given
    openai_server.always(error(500))

    # when
    with pytest.raises(UpstreamError, match="HTTP 500"):
        ask(openai_backend, "hello")

    # then: a new session is stored by its first turn, which failed
    assert ChatSession.get_all("public") == []


def test_a_first_turn_that_fails_after_capturing_a_lead_stores_nothing(
    openai_server: FakeOpenAI, openai_backend: Backend
) -> None:
    # given: the model captures a lead, then the provider fails on the follow-up call
    overrides = {**OVERRIDES, "tools": ["capture_lead"]}
    details = {"full_name": "Ada Lovelace", "email": "ada@example.com"}
    capture = Reply(tool_calls=[ToolCall("capture_lead", details, id="call_lead_1")])
    openai_server.script(capture, error(500), error(500))

    # when
    with pytest.raises(UpstreamError):
        chat(ChatMessage(message="I'm Ada Lovelace, ada@example.com", agent_config_overrides=overrides), openai_backend)

    # then: the tool's lead was never written, and the new session never stored (the turn is all or nothing)
    assert Lead.get_all("public") == []
    assert ChatSession.get_all("public") == []


def test_a_retry_after_a_failed_capture_saves_exactly_one_lead(
    openai_server: FakeOpenAI, openai_backend: Backend
) -> None:
    # given: a session whose profile can capture leads
    overrides = {**OVERRIDES, "tools": ["capture_lead"]}
    openai_server.script(Reply("Hello!"))
    first = chat(ChatMessage(message="hi", agent_config_overrides=overrides), openai_backend)
    # ... and a turn where capture_lead runs, then the provider fails on the follow-up call (nothing written)
    details = {"full_name": "Ada Lovelace", "email": "ada@example.com"}
    capture = Reply(tool_calls=[ToolCall("capture_lead", details, id="call_lead_1")])
    openai_server.script(capture, error(500), error(500))
    with pytest.raises(UpstreamError):
        ask(openai_backend, "I'm Ada Lovelace, ada@example.com", session_id=first.session_id)
    assert Lead.get_all("public") == []

    # when: the person says it again and the model captures the lead again
    openai_server.script(Reply(tool_calls=[ToolCall("capture_lead", details, id="call_lead_2")]), Reply("Saved."))
    ask(openai_backend, "I'm Ada Lovelace, ada@example.com", session_id=first.session_id)

    # then: still one lead, and the session points at it
    [lead] = Lead.get_all("public")
    assert ChatSession.get(first.client_id, first.session_id).lead_id == lead.lead_id


def test_rejected_api_key_is_upstream_error_naming_the_key(
    openai_server: FakeOpenAI, openai_backend: Backend, started: ChatResponse
) -> None:
    # given
    before = stored(started)
    openai_server.always(error(401, "Incorrect API key provided: test-key."))

    # when
    with pytest.raises(UpstreamError) as raised:
        ask(openai_backend, "second question", session_id=started.session_id)

    # then
    assert type(raised.value) is UpstreamError
    assert "API key" in raised.value.message
    assert "OPENAI_API_KEY" in raised.value.message
    assert "test-key" not in raised.value.message
    assert stored(started) == before
    assert len(openai_server.completion_requests) == 1 + 1  # a refused key is not retried


def test_a_slow_server_ends_the_turn_at_the_deadline_with_the_stop_reply(
    openai_server: FakeOpenAI, openai_backend: Backend, started: ChatResponse
) -> None:
    # given: max_execution_time is 1 s, the server answers after 3 s
    openai_server.always(Reply("too late", delay=3))

    # when
    began = time.monotonic()
    response = ask(openai_backend, "second question", session_id=started.session_id)

    # then: the turn ended at its deadline, not after the delay (no time left to retry), and is stored with the
    # stop reply
    assert time.monotonic() - began < 1 + 1
    assert len(openai_server.completion_requests) == 1 + 1
    assert (response.stopped, response.message) == (
        "max_execution_time", "I had to stop here: this request took longer than 1 seconds. Please try again.")
    session = ChatSession.get(response.client_id, response.session_id)
    assert int(session.turn_count) == 2
    assert [m.type for m in memory_codec.loads(session.memory)[-2:]] == ["human", "ai"]


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def unreachable_backend() -> Iterator[Backend]:
    """A backend whose OpenAI base URL is a loopback port nobody listens on."""
    settings = Settings(
        backend="memory", memory_store=None, openai_base_url=f"http://127.0.0.1:{unused_port()}/v1",
        openai_api_key="test-key",
    )
    with installed_backend(settings) as started:
        yield started


def test_unreachable_server_is_upstream_error_naming_the_base_url(unreachable_backend: Backend) -> None:
    with pytest.raises(UpstreamError) as raised:
        ask(unreachable_backend, "hello")

    assert type(raised.value) is UpstreamError
    assert "OPENAI_BASE_URL" in raised.value.message


def test_a_hung_model_after_a_tool_call_ends_the_turn_by_the_deadline_with_the_stop_reply(
    openai_server: FakeOpenAI, openai_backend: Backend, started: ChatResponse
) -> None:
    # given: max_execution_time 1 s; the model asks for a tool, then hangs
    openai_server.script(Reply(tool_calls=[ToolCall("calculator", {"expression": "2+2"}, id="call_hang_1")]))
    openai_server.always(Reply("too late", delay=30))

    # when
    began = time.monotonic()
    response = ask(openai_backend, "what is 2+2?", session_id=started.session_id)

    # then: within the deadline plus 1 s, the usual reply, and a stored turn whose tool call keeps its result
    assert time.monotonic() - began < 1 + 1
    assert response.stopped == "max_execution_time"
    assert response.message.startswith("I had to stop here")
    assert int(ChatSession.get(response.client_id, response.session_id).turn_count) == 2


def test_a_profile_base_url_never_gets_the_process_key(
    openai_server: FakeOpenAI, openai_backend: Backend
) -> None:
    # given: the process has OPENAI_API_KEY (the fixture's test key); a profile points at its own server
    openai_server.script(Reply("hello"))

    # when
    chat(ChatMessage(message="hi", agent_config_overrides={**OVERRIDES, "base_url": openai_server.base_url}),
         openai_backend)

    # then
    [request] = openai_server.completion_requests
    assert request.headers["authorization"] == "Bearer unused"
