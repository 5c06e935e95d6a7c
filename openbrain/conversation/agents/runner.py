"""One agent turn: a langchain 1.x tool-calling agent rebuilt from an AgentConfig and run once.

Limits are enforced by one middleware (`TurnLimits`), around every model call:

- after `max_iterations` model calls, or once the turn's deadline has passed, the turn ends with a plain message
  (not an error), so the session still saves a consistent transcript: every tool call keeps its result;
- the call runs in a worker thread and is waited for only until the deadline (a hung
  server cannot hold the turn; the client's own timeout ends the abandoned call later). A call the deadline cuts
  ends the turn with the same message, stored with the person's message (and every tool call of the turn with
  its result). A retryable provider error (connection, 408/409/429/5xx) is retried once if time remains;
  provider errors of any provider map to the same errors.

The deadline is `context.deadline` (the caller's: the Lambda's remaining time, API Gateway's 29 s) or
`max_execution_time` from now, whichever comes first.

A warm process compiles an agent once and reuses it for every turn it fits: the compiled graph depends
only on the chat model, the tools, the system message and the limits, while the history, the message,
the tool context and the turn's deadline are given to each invocation (compiling cost ~3.6 ms, about a
third of a turn's own time, docs/benchmarks.md).
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from langchain.agents import create_agent
from langchain.agents.middleware import AgentMiddleware
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage

from openbrain.conversation.agents.models import endpoint_source, key_source
from openbrain.conversation.tools.registry import build_tools
from openbrain.core.errors import OpenBrainError, UpstreamError, UpstreamTimeoutError

if TYPE_CHECKING:
    from langchain_core.language_models.chat_models import BaseChatModel

    from openbrain.conversation.tools.context import ToolContext
    from openbrain.storage.orm.agent_config import AgentConfig

log = logging.getLogger(__name__)
STOP_MAX_ITERATIONS = "max_iterations"
STOP_MAX_EXECUTION_TIME = "max_execution_time"


RETRY_PAUSE = 0.5  # seconds before the one retry of a retryable provider error, unless it says how long
MAX_RETRY_PAUSE = 5.0


class TurnLimits(AgentMiddleware):
    """Ends the turn instead of a model call that would exceed the step or time budget, and bounds every model
    call by the deadline (module docstring). The deadline is the turn's, read from its `ToolContext`: one compiled
    agent serves many turns."""

    def __init__(self, max_iterations: int, max_execution_time: float) -> None:
        super().__init__()
        self.max_iterations = max_iterations
        self.max_execution_time = max_execution_time

    def wrap_model_call(self, request: Any, handler: Callable[[Any], Any]) -> Any:
        # The limits are checked here rather than in a `before_model` hook: one middleware node fewer per model
        # call in the graph (docs/benchmarks.md); a reply without tool calls ends the turn all the same.
        calls = 0
        for message in reversed(request.messages):
            if isinstance(message, HumanMessage):
                break
            calls += isinstance(message, AIMessage)
        if calls >= self.max_iterations:
            return _stop(STOP_MAX_ITERATIONS,
                         f"I had to stop here: this request needed more than {self.max_iterations} steps. "
                         "Please try a simpler or more specific question.")
        deadline = request.runtime.context.deadline
        retried = False
        while True:
            try:
                return _call_by(deadline, handler, request)
            except _DeadlineReached:
                return _out_of_time(request.runtime.context)
            except OpenBrainError:
                raise
            except Exception as exc:
                failure = ProviderFailure.of(exc) or ProviderFailure.unreadable(exc)
                pause = failure.retry_pause()
                if retried or pause is None or time.monotonic() + pause >= deadline:
                    raise failure from exc
            retried = True
            time.sleep(pause)

def _out_of_time(context: ToolContext) -> AIMessage:
    return _stop(STOP_MAX_EXECUTION_TIME,
                 f"I had to stop here: this request took longer than {context.budget:g} seconds. Please try again.")


def _stop(reason: str, text: str) -> AIMessage:
    return AIMessage(text, response_metadata={"openbrain_stop": reason})


class _DeadlineReached(Exception):
    pass


def _call_by(deadline: float, handler: Callable[[Any], Any], request: Any) -> Any:
    """`handler(request)` in a worker thread (with this thread's context: langgraph's config, callbacks),
    waited for until `deadline`; `_DeadlineReached` if it has not returned by then."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise _DeadlineReached
    done = threading.Event()
    outcome: dict[str, Any] = {}
    context = contextvars.copy_context()

    def call() -> None:
        try:
            outcome["value"] = context.run(handler, request)
        except BaseException as exc:  # handed to the waiting thread as it is
            outcome["error"] = exc
        finally:
            done.set()

    threading.Thread(target=call, name="openbrain-model-call", daemon=True).start()
    if not done.wait(remaining):
        raise _DeadlineReached
    if "error" in outcome:
        if time.monotonic() >= deadline:  # it failed as the time ran out (the client's own timeout, this thread
            raise _DeadlineReached  # woken late on a busy machine): the deadline's stop, as if the wait had ended
        raise outcome["error"]
    return outcome["value"]


# Exception class names (anywhere in the MRO) that mean the same thing in every provider's SDK: openai's,
# anthropic's, groq's (APITimeoutError, APIConnectionError), httpx's (ollama, mistralai), botocore's (bedrock),
# requests', and the builtins.
_TIMEOUTS = frozenset({"APITimeoutError", "TimeoutException", "ReadTimeout", "ReadTimeoutError",
                       "ConnectTimeoutError", "TimeoutError"})
_CONNECTION = frozenset({"APIConnectionError", "TransportError", "ConnectError", "EndpointConnectionError",
                         "ConnectionError"})
_RETRYABLE_STATUS = frozenset({408, 409, 429})


class ProviderFailure(Exception):
    """A model provider's failure, classified by its shape whatever the provider: `timeout`, `auth` (401/403),
    `status` (any other HTTP error), `connection`, or `unreadable` (an answer the integration could not read:
    a web page where JSON should be, ...). `run_turn` words it as an `UpstreamError`."""

    def __init__(self, kind: str, status: int | None = None, headers: Any = None) -> None:
        super().__init__(kind if status is None else f"{kind} {status}")
        self.kind, self.status, self.headers = kind, status, headers

    @classmethod
    def of(cls, exc: BaseException) -> ProviderFailure | None:
        """`exc` classified, or None when it is not a provider's failure (our own errors, bugs)."""
        names = {klass.__name__ for klass in type(exc).__mro__}
        if names & _TIMEOUTS:
            return cls("timeout")
        status, headers = _status_of(exc)
        if status in (401, 403):
            return cls("auth", status)
        if status is not None:
            return cls("status", status, headers)
        if names & _CONNECTION:
            return cls("connection")
        return None

    @classmethod
    def unreadable(cls, exc: BaseException) -> ProviderFailure:
        """Whatever else the model call raised. Only the provider's answer and its langchain integration run
        there, and an integration says "not an answer" with a bare exception (langchain-openai: `ValueError`
        for a web page where JSON should be), so it is a 502, never a 500; the traceback goes to the log, where
        a bug in an integration shows as what it is."""
        log.error("the model provider's answer could not be read", exc_info=exc)
        return cls("unreadable")

    def retry_pause(self) -> float | None:
        """Seconds to wait before the one retry, or None when retrying cannot help."""
        if self.kind == "connection":
            return RETRY_PAUSE
        if self.kind != "status" or not (self.status in _RETRYABLE_STATUS or (self.status or 0) >= 500):
            return None
        headers = self.headers if hasattr(self.headers, "get") else {}
        if str(headers.get("x-should-retry", "")).lower() == "false":
            return None
        for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
            try:
                return min(float(headers.get(name) or "") * scale, MAX_RETRY_PAUSE)
            except (TypeError, ValueError):
                continue
        return RETRY_PAUSE

    def error(self, config: AgentConfig) -> UpstreamError:
        """The library's error for this failure, naming where `config`'s key or server comes from."""
        if self.kind == "timeout":
            return UpstreamTimeoutError("the model provider did not answer in time")
        if self.kind == "auth":
            return UpstreamError(f"the model provider refused the API key (check {key_source(config)})")
        if self.kind == "status":
            return UpstreamError(f"the model provider answered with an error (HTTP {self.status})")
        if self.kind == "unreadable":
            return UpstreamError("the model provider's answer could not be read (not what its API sends)")
        return UpstreamError(f"the model provider could not be reached (check {endpoint_source(config)})")


def _status_of(exc: BaseException) -> tuple[int | None, Any]:
    """The HTTP status (400-599) and response headers of a provider error, from the shapes SDKs share:
    `status_code` (openai, anthropic, groq, ollama), `response.status_code` (httpx), `code` (google-genai),
    botocore's `response["ResponseMetadata"]["HTTPStatusCode"]` (bedrock)."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    candidates = [getattr(exc, "status_code", None), getattr(response, "status_code", None), getattr(exc, "code", None)]
    if isinstance(response, dict):
        metadata = response.get("ResponseMetadata") or {}
        candidates.append(metadata.get("HTTPStatusCode"))
        headers = metadata.get("HTTPHeaders")
    for value in candidates:
        if isinstance(value, int) and not isinstance(value, bool) and 400 <= value <= 599:
            return value, headers
    return None, None


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
    usage: dict[str, int]


TurnEvent = dict[str, Any]  # {"type": "token" | "tool.started" | "tool.finished", ...}: conversation/chat.py


def _reply_text(message: BaseMessage) -> str:
    if isinstance(message.content, str):
        return message.content
    return "".join(
        part.get("text", "") if isinstance(part, dict) else str(part) for part in message.content
    )


def turn_events(
    config: AgentConfig,
    model: BaseChatModel,
    history: Sequence[BaseMessage],
    user_message: str,
    context: ToolContext,
    *,
    tokens: bool = True,
) -> Generator[TurnEvent, None, TurnOutcome]:
    """Run one turn on `history` (the window the model sees), yielding what happens as it happens, and return
    the messages it added (`outcome = yield from turn_events(...)`).

    - `{"type": "token", "text", "step"}`: a piece of a model reply as the model streams it (only when `tokens`;
      without, the model is not asked to stream). `step` counts the model replies of the turn, from 1: the reply
      of the turn is the text of its last step. A reply the turn's limits wrote instead of the model (the
      deadline, `max_iterations`) is a step of its own, so the text of a model call the deadline cut stays in
      its step; a cut call's late tokens are dropped.
    - `{"type": "tool.started", "id", "name"}` once the model has asked for a tool, and
      `{"type": "tool.finished", "id", "name", "ok"}` once it ran (`ok` false: it answered with an error).
      What a tool returns to the model is not in the event: it may hold the session's tool context."""
    context.start_clock(float(config.max_execution_time))
    agent = compiled_agent(model, tuple(str(name) for name in config.tools or []), config.system_message or None,
                           int(config.max_iterations), float(config.max_execution_time))
    inputs = [*history, HumanMessage(user_message)]
    state: dict[str, Any] = {}
    steps: list[str | None] = []  # the id of each step's message
    try:
        for mode, item in agent.stream(
            {"messages": inputs},
            context=context,  # type: ignore[call-overload]  # the compiled graph is typed for context=None
            config={"recursion_limit": 4 * int(config.max_iterations) + 10},
            stream_mode=["updates", "values", "messages"] if tokens else ["updates", "values"],
        ):
            if mode == "values":
                state = item
            elif mode == "messages":
                yield from _tokens(item[0], steps)
            else:
                yield from _tool_events(item)
    except ProviderFailure as failure:
        raise failure.error(config) from failure
    new_messages = list(state["messages"][len(inputs) - 1 :])
    last = new_messages[-1]
    stopped = last.response_metadata.get("openbrain_stop") if isinstance(last, AIMessage) else None
    usage: dict[str, int] = {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0}
    for message in new_messages:
        for name, count in ((getattr(message, "usage_metadata", None) or {}).items()):
            if name in usage and isinstance(count, int):
                usage[name] += count
    return TurnOutcome(new_messages, _reply_text(last), stopped, usage)


def _tokens(message: BaseMessage, steps: list[str | None]) -> Iterator[TurnEvent]:
    """The token events of one item of langgraph's `messages` stream: a chunk of the streaming model, or a
    whole message a node returned (the limits' own reply; tool results, which are not tokens)."""
    if not isinstance(message, AIMessage):  # AIMessageChunk is one too
        return
    if message.id not in steps[-1:]:
        if message.id is not None and message.id in steps:
            return  # a late chunk of a call the deadline cut: its step is over
        steps.append(message.id)
    text = _reply_text(message)
    if text:
        yield {"type": "token", "text": text, "step": len(steps)}


def _tool_events(update: dict[str, Any]) -> Iterator[TurnEvent]:
    for node, output in update.items():
        for message in (output or {}).get("messages", []) if isinstance(output, dict) else []:
            if node == "model" and isinstance(message, AIMessage):
                for call in message.tool_calls:
                    yield {"type": "tool.started", "id": call["id"], "name": call["name"]}
            elif isinstance(message, ToolMessage):
                yield {"type": "tool.finished", "id": message.tool_call_id, "name": message.name,
                       "ok": message.status != "error"}


def run_turn(
    config: AgentConfig,
    model: BaseChatModel,
    history: Sequence[BaseMessage],
    user_message: str,
    context: ToolContext,
) -> TurnOutcome:
    """`turn_events` run to its end without tokens: the outcome alone."""
    events = turn_events(config, model, history, user_message, context, tokens=False)
    while True:
        try:
            next(events)
        except StopIteration as finished:
            return finished.value  # type: ignore[no-any-return]
