"""One agent turn: a langchain 1.x tool-calling agent rebuilt from an AgentConfig and run once.

Limits are enforced by a middleware that runs before every model call: after `max_iterations` model
calls, or once `max_execution_time` seconds have passed, the turn ends with a plain message (not an
error), so the session still saves a consistent transcript: every tool call keeps its result. A single
model call is bounded by the client's own timeout (the same `max_execution_time`).

A warm process compiles an agent once and reuses it for every turn it fits: the compiled graph depends
only on the chat model, the tools, the system message and the limits, while the history, the message,
the tool context and the turn's deadline are given to each invocation (compiling cost ~3.6 ms, about a
third of a turn's own time, docs/benchmarks.md).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from langchain.agents import create_agent
from langchain.agents.middleware import AgentMiddleware, hook_config
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

from openbrain.conversation.tools.registry import build_tools
from openbrain.core.errors import UpstreamError, UpstreamTimeoutError

if TYPE_CHECKING:
    from langchain_core.language_models.chat_models import BaseChatModel

    from openbrain.conversation.tools.context import ToolContext
    from openbrain.storage.orm.agent_config import AgentConfig

STOP_MAX_ITERATIONS = "max_iterations"
STOP_MAX_EXECUTION_TIME = "max_execution_time"


class TurnLimits(AgentMiddleware):
    """Ends the turn before a model call that would exceed the step or time budget (the time budget's
    deadline is the turn's, read from its `ToolContext`: one compiled agent serves many turns)."""

    def __init__(self, max_iterations: int, max_execution_time: float) -> None:
        super().__init__()
        self.max_iterations = max_iterations
        self.max_execution_time = max_execution_time

    @hook_config(can_jump_to=["end"])
    def before_model(self, state: Any, runtime: Any) -> dict[str, Any] | None:
        messages = state["messages"]
        calls = 0
        for message in reversed(messages):
            if isinstance(message, HumanMessage):
                break
            calls += isinstance(message, AIMessage)
        if calls >= self.max_iterations:
            return self._stop(
                STOP_MAX_ITERATIONS,
                f"I had to stop here: this request needed more than {self.max_iterations} steps. "
                "Please try a simpler or more specific question.",
            )
        if time.monotonic() >= runtime.context.deadline:
            return self._stop(
                STOP_MAX_EXECUTION_TIME,
                f"I had to stop here: this request took longer than {self.max_execution_time:g} seconds. "
                "Please try again.",
            )
        return None

    @staticmethod
    def _stop(reason: str, text: str) -> dict[str, Any]:
        return {"jump_to": "end", "messages": [AIMessage(text, response_metadata={"openbrain_stop": reason})]}


_agents: OrderedDict[tuple[Any, ...], tuple[BaseChatModel, Any]] = OrderedDict()
_agents_lock = threading.Lock()
MAX_COMPILED_AGENTS = 64  # profiles a warm process keeps compiled; the least recently used goes first


def compiled_agent(model: BaseChatModel, tools: tuple[str, ...], system_prompt: str | None, max_iterations: int,
                   max_execution_time: float) -> Any:
    """The agent for these parameters, compiled on first use. Keyed by the model object itself (kept alive
    by the entry, so its id cannot be reused while cached): `build_chat_model` returns one per setting."""
    key = (id(model), tools, system_prompt, max_iterations, max_execution_time)
    with _agents_lock:
        entry = _agents.get(key)
        if entry is not None:
            _agents.move_to_end(key)
            return entry[1]
    agent = create_agent(model, tools=build_tools(tools), system_prompt=system_prompt,
                         middleware=[TurnLimits(max_iterations, max_execution_time)])
    with _agents_lock:
        _agents[key] = (model, agent)
        while len(_agents) > MAX_COMPILED_AGENTS:
            _agents.popitem(last=False)
    return agent


@dataclass
class TurnOutcome:
    new_messages: list[BaseMessage]
    reply: str
    stopped: str | None


def _reply_text(message: BaseMessage) -> str:
    if isinstance(message.content, str):
        return message.content
    return "".join(
        part.get("text", "") if isinstance(part, dict) else str(part) for part in message.content
    )


def run_turn(
    config: AgentConfig,
    model: BaseChatModel,
    history: Sequence[BaseMessage],
    user_message: str,
    context: ToolContext,
) -> TurnOutcome:
    """Run one turn on `history` (the window the model sees) and return the messages it added."""
    context.deadline = time.monotonic() + float(config.max_execution_time)
    agent = compiled_agent(model, tuple(str(name) for name in config.tools or []), config.system_message or None,
                           int(config.max_iterations), float(config.max_execution_time))
    inputs = [*history, HumanMessage(user_message)]
    try:
        state = agent.invoke(
            {"messages": inputs},
            context=context,  # type: ignore[call-overload]  # the compiled graph is typed for context=None
            config={"recursion_limit": 4 * int(config.max_iterations) + 10},
        )
    except Exception as exc:
        translated = _provider_error(exc)
        if translated is exc:
            raise
        raise translated from exc
    new_messages = list(state["messages"][len(inputs) - 1 :])
    last = new_messages[-1]
    stopped = last.response_metadata.get("openbrain_stop") if isinstance(last, AIMessage) else None
    return TurnOutcome(new_messages, _reply_text(last), stopped)


def _provider_error(exc: Exception) -> Exception:
    """Translate a model provider's failure; anything else (our own errors, bugs) passes unchanged."""
    import openai  # loaded already by any openai: model; cheap to reach here otherwise
    if isinstance(exc, openai.APITimeoutError):
        return UpstreamTimeoutError("the model provider did not answer in time")
    if isinstance(exc, openai.AuthenticationError):
        return UpstreamError("the model provider refused the API key (check OPENAI_API_KEY)")
    if isinstance(exc, openai.APIStatusError):
        return UpstreamError(f"the model provider answered with an error (HTTP {exc.status_code})")
    if isinstance(exc, openai.APIConnectionError):
        return UpstreamError("the model provider could not be reached (check OPENAI_BASE_URL)")
    return exc
