"""One agent turn and its limits: `max_iterations` and `max_execution_time` end a turn cleanly."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from support.fake_openai import FakeOpenAI, RecordedRequest, Reply, ToolCall
from support.scripted_chat import ScriptedChatModel, tool_call_reply

from openbrain.aws.backend import Backend
from openbrain.conversation.agents.runner import (
    STOP_MAX_EXECUTION_TIME,
    STOP_MAX_ITERATIONS,
    TurnOutcome,
    compiled_agent,
    run_turn,
)
from openbrain.conversation.chat import ChatMessage, ChatResponse, chat
from openbrain.conversation.tools.context import ToolContext
from openbrain.core.errors import UpstreamError
from openbrain.storage import memory_codec
from openbrain.storage.orm.agent_config import AgentConfig
from openbrain.storage.orm.chat_session import ChatSession

SYSTEM = "You are scripted."


def agent_config(**fields: Any) -> AgentConfig:
    values: dict[str, Any] = {"system_message": SYSTEM, "tools": ["calculator"], "max_iterations": 5,
                              "max_execution_time": 30, **fields}
    return AgentConfig("public", "default", **values)


def tool_context() -> ToolContext:
    return ToolContext(client_id="public", session_id="session-1")


def always_calculating(number: int) -> AIMessage:
    return tool_call_reply("calculator", {"expression": f"{number}+1"}, number)


def turn(model: ScriptedChatModel, config: AgentConfig, history: Sequence[BaseMessage] = (),
         message: str = "keep going") -> TurnOutcome:
    return run_turn(config, model, list(history), message, tool_context())


def assert_every_tool_call_has_its_result(messages: Sequence[BaseMessage]) -> None:
    answered = {m.tool_call_id for m in messages if isinstance(m, ToolMessage)}
    asked = [call["id"] for m in messages if isinstance(m, AIMessage) for call in m.tool_calls]
    assert asked, "expected tool calls in the transcript"
    assert set(asked) <= answered
    assert len(answered) == len(asked)


# -- run_turn with a scripted model --------------------------------------------------------------


def test_turn_within_limits_runs_tools_and_ends_with_the_answer() -> None:
    # given
    model = ScriptedChatModel(replies=[tool_call_reply("calculator", {"expression": "6*7"}), AIMessage("42.")])

    # when
    outcome = turn(model, agent_config(max_iterations=2), message="what is 6*7?")

    # then
    assert outcome.stopped is None
    assert outcome.reply == "42."
    assert model.calls == 2
    assert model.bound_tools == ["calculator"]
    assert [type(m) for m in outcome.new_messages] == [HumanMessage, AIMessage, ToolMessage, AIMessage]
    assert outcome.new_messages[2].content == "6*7 = 42"


def test_model_sees_system_message_history_and_the_new_message() -> None:
    # given
    history = [AIMessage("Hi!"), HumanMessage("earlier"), AIMessage("earlier answer")]
    model = ScriptedChatModel(replies=[AIMessage("now")])

    # when
    outcome = turn(model, agent_config(), history, "latest")

    # then
    [seen] = model.received
    assert isinstance(seen[0], SystemMessage)
    assert seen[0].content == SYSTEM
    assert [m.content for m in seen[1:]] == ["Hi!", "earlier", "earlier answer", "latest"]
    assert [m.content for m in outcome.new_messages] == ["latest", "now"]


def test_max_iterations_ends_the_turn_with_a_clear_message() -> None:
    # given: a model that asks for a tool every time
    model = ScriptedChatModel(forever=always_calculating)

    # when
    outcome = turn(model, agent_config(max_iterations=3))

    # then
    assert outcome.stopped == STOP_MAX_ITERATIONS == "max_iterations"
    assert outcome.reply.startswith("I had to stop here")
    assert "3 steps" in outcome.reply
    assert model.calls == 3
    assert [type(m) for m in outcome.new_messages] == [HumanMessage] + [AIMessage, ToolMessage] * 3 + [AIMessage]
    assert_every_tool_call_has_its_result(outcome.new_messages)
    stop = outcome.new_messages[-1]
    assert isinstance(stop, AIMessage)
    assert stop.tool_calls == []


def test_max_iterations_counts_only_the_current_turn() -> None:
    # given: a long history of earlier tool-calling turns
    earlier = turn(ScriptedChatModel(forever=always_calculating), agent_config(max_iterations=3)).new_messages
    model = ScriptedChatModel(replies=[tool_call_reply("calculator", {"expression": "1+1"}, 99), AIMessage("2")])

    # when
    outcome = turn(model, agent_config(max_iterations=2), earlier, "what is 1+1")

    # then
    assert outcome.stopped is None
    assert outcome.reply == "2"


def test_max_execution_time_ends_the_turn_before_the_next_model_call() -> None:
    # given: each model call takes 0.5 s and always asks for a tool; the budget is 1 s (the second call
    # starts with half of it left, room for a loaded machine; a third cannot start in time)
    model = ScriptedChatModel(forever=always_calculating, delay=0.5)

    # when
    outcome = turn(model, agent_config(max_execution_time=1, max_iterations=10))

    # then
    assert outcome.stopped == STOP_MAX_EXECUTION_TIME == "max_execution_time"
    assert outcome.reply.startswith("I had to stop here")
    assert "1 seconds" in outcome.reply
    assert model.calls == 2
    assert_every_tool_call_has_its_result(outcome.new_messages)


def test_any_other_error_of_the_model_call_is_an_unreadable_answer_with_its_traceback_logged(
        caplog: pytest.LogCaptureFixture) -> None:
    # langchain-openai raises a bare ValueError for a web page where JSON should be: the provider's fault (502)
    model = ScriptedChatModel(error=ValueError("Unexpected response type from OpenAI-compatible endpoint"))

    with pytest.raises(UpstreamError, match="answer could not be read") as raised:
        turn(model, agent_config())

    assert type(raised.value) is UpstreamError
    assert model.calls == 1  # not retried: the same answer would come again
    [record] = [r for r in caplog.records if r.name == "openbrain.conversation.agents.runner"]
    assert record.exc_info is not None and record.exc_info[0] is ValueError


# -- the chat turn against the fake OpenAI server ------------------------------------------------


def endless_tool_calls(server: FakeOpenAI, delay: float = 0.0) -> None:
    def answer(request: RecordedRequest) -> Reply:
        return Reply(tool_calls=[ToolCall("calculator", {"expression": "2+2"}, id=server.new_call_id())], delay=delay)

    server.always(answer)


def ask(backend: Backend, message: str, session_id: str | None = None, **overrides: Any) -> ChatResponse:
    request = ChatMessage(
        message=message, session_id=session_id,
        agent_config_overrides={"model": "openai:gpt-test", "tools": ["calculator"], **overrides},
    )
    return chat(request, backend)


def stored_messages(response: ChatResponse) -> list[BaseMessage]:
    return memory_codec.loads(ChatSession.get(response.client_id, response.session_id).memory)


@pytest.mark.integration
def test_chat_stopped_by_max_iterations_saves_a_consistent_session_that_can_continue(
    openai_server: FakeOpenAI, openai_backend: Backend
) -> None:
    # given: the server asks for a tool on every request
    endless_tool_calls(openai_server)

    # when
    response = ask(openai_backend, "loop forever", max_iterations=3)

    # then: a clear reply, exactly max_iterations model calls, every tool call answered in the stored memory
    assert response.stopped == "max_iterations"
    assert response.message.startswith("I had to stop here")
    assert response.tool_calls == ["calculator"] * 3
    assert len(openai_server.completion_requests) == 3
    session = ChatSession.get(response.client_id, response.session_id)
    assert int(session.turn_count) == 1
    stored = stored_messages(response)
    assert_every_tool_call_has_its_result(stored)
    assert stored[-1].content == response.message

    # and when: the next turn gets a plain answer
    openai_server.always(None)
    openai_server.script(Reply("Sorry about that. 2+2 is 4."))
    after = ask(openai_backend, "just tell me", session_id=response.session_id)

    # then: the server accepted the stored transcript (it rejects tool calls without results) and saw the stop
    assert after.message == "Sorry about that. 2+2 is 4."
    assert after.stopped is None
    last = openai_server.completion_requests[-1]
    assert {"role": "assistant", "content": response.message} in last.messages
    assert sum(1 for m in last.messages if m["role"] == "tool") == 3
    assert int(ChatSession.get(after.client_id, after.session_id).turn_count) == 2


@pytest.mark.integration
def test_chat_stopped_by_max_execution_time_saves_the_session(
    openai_server: FakeOpenAI, openai_backend: Backend
) -> None:
    # given: every answer takes 0.5 s (under the 1 s client timeout) and asks for another tool: the second
    # call starts with half the budget left (room for a loaded machine), a third could not start in time
    endless_tool_calls(openai_server, delay=0.5)

    # when
    response = ask(openai_backend, "slow loop", max_execution_time=1, max_iterations=10)

    # then
    assert response.stopped == "max_execution_time"
    assert response.message.startswith("I had to stop here")
    assert len(openai_server.completion_requests) == 2
    session = ChatSession.get(response.client_id, response.session_id)
    assert int(session.turn_count) == 1
    stored = stored_messages(response)
    assert_every_tool_call_has_its_result(stored)
    assert stored[-1].content == response.message


def test_a_warm_process_compiles_an_agent_once_per_shape() -> None:
    # given
    model, other_model = ScriptedChatModel(), ScriptedChatModel()
    shape = (("calculator",), SYSTEM, 5, 30.0)

    # when / then: the same shape with the same model is one compiled agent
    first = compiled_agent(model, *shape)
    assert compiled_agent(model, *shape) is first
    # ... and anything that shapes it (model, tools, prompt, limits) is another
    assert compiled_agent(other_model, *shape) is not first
    assert compiled_agent(model, ("calculator", "get_current_time"), SYSTEM, 5, 30.0) is not first
    assert compiled_agent(model, ("calculator",), "Be brief.", 5, 30.0) is not first
    assert compiled_agent(model, ("calculator",), SYSTEM, 6, 30.0) is not first
    assert compiled_agent(model, ("calculator",), SYSTEM, 5, 10.0) is not first


def test_a_reused_agent_gives_every_turn_its_own_deadline_and_context() -> None:
    # given: one model and config, so the second turn runs on the agent the first compiled
    model = ScriptedChatModel(forever=always_calculating, delay=0.8)
    config = agent_config(max_execution_time=2, max_iterations=10)
    first_context, second_context = tool_context(), tool_context()

    # when
    first = run_turn(config, model, [], "keep going", first_context)
    second = run_turn(config, model, [], "keep going", second_context)

    # then: each turn had the whole budget (two answered calls each, a third cut by the deadline), and its tool
    # calls went to its own context
    assert first.stopped == second.stopped == STOP_MAX_EXECUTION_TIME
    assert model.calls == 6
    assert first_context.tool_calls == second_context.tool_calls == ["calculator", "calculator"]


def test_a_model_call_that_fails_as_the_deadline_passes_ends_in_the_deadlines_stop(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # given: the waiting thread wakes only once the call is over (a loaded machine; seen in CI), and the call fails
    # with the client's own timeout just after the deadline
    from openbrain.conversation.agents import runner

    class LateEvent(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:
            return super().wait()

    monkeypatch.setattr(runner.threading, "Event", LateEvent)

    def call(_: Any) -> Any:
        time.sleep(0.05)
        raise TimeoutError("the HTTP client's read timeout")

    # then: the deadline's stop (the turn is stored with its stop reply), not a provider failure
    with pytest.raises(runner._DeadlineReached):
        runner._call_by(time.monotonic() + 0.01, call, None)
