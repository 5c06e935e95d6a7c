"""`offline`: a deterministic chat model that needs no key and no network.

It reads the latest human message and, when the matching tool is bound, calls it:
- "what time is it in Tokyo"                       -> get_current_time(timezone="Asia/Tokyo")
- "convert 14:30 London to UTC" / "09:00 UTC in Paris" -> convert_to_from_utc(...)
- "what is (17 + 5) * 3"                            -> calculator(expression="(17 + 5) * 3")
- "my name is Ada Lovelace, email ada@example.com"  -> capture_lead(full_name=..., email=...)
- "goodbye"                                          -> end_conversation()
- "remind me in 5 minutes to stretch"               -> schedule_message(recipient="chatbot", when="in 5 minutes",
                                                        message="Remind the person to stretch")
- "list my reminders" / "cancel reminder <id>"       -> list_schedules() / cancel_schedule(schedule_id=...)
After tool results it answers from them, in its own words where a result speaks to the model ("Scheduled (ID):
WHEN. Tell the person ..." becomes "I'll remind you: WHEN (its id is ID)."); otherwise it answers in a way that
shows it sees the conversation history. Every reply carries
`response_metadata={"model_name": "offline", "offline": True}` and a rough `usage_metadata`, and streams token by
token (`OfflineChatModel`).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import LangSmithParams, LanguageModelInput
from langchain_core.language_models.chat_models import BaseChatModel, generate_from_stream
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    ToolCallChunk,
    ToolMessage,
    UsageMetadata,
)
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool

MODEL_NAME = "offline"
PROVIDER = "openbrain"  # `ls_provider` in traces: the model is part of OpenBrain, not a vendor's
OFFLINE_METADATA = {"model_name": MODEL_NAME, "offline": True}

CITY_TIMEZONES = {
    "tokyo": "Asia/Tokyo",
    "japan": "Asia/Tokyo",
    "london": "Europe/London",
    "paris": "Europe/Paris",
    "berlin": "Europe/Berlin",
    "madrid": "Europe/Madrid",
    "new york": "America/New_York",
    "chicago": "America/Chicago",
    "denver": "America/Denver",
    "los angeles": "America/Los_Angeles",
    "san francisco": "America/Los_Angeles",
    "sydney": "Australia/Sydney",
    "singapore": "Asia/Singapore",
    "mumbai": "Asia/Kolkata",
    "delhi": "Asia/Kolkata",
    "sao paulo": "America/Sao_Paulo",
    "utc": "UTC",
}

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,24}")
_PHONE = re.compile(r"(?<![\w@])\+?\d[\d ().-]{6,20}\d")
_NAME = re.compile(r"\b(?i:my name is|i am|i'm|this is)\s+([A-Z][\w'-]+(?:\s+[A-Z][\w'-]+){0,3})")
_BYE = re.compile(r"\b(bye|goodbye|good bye|that's all|end (?:the )?(?:chat|conversation))\b", re.I)
_TIME_IN = re.compile(r"\btime\b.*?\bin\s+([A-Za-z][A-Za-z _/]*[A-Za-z])", re.I)
_TIME = re.compile(r"\b(?:what time|current time|time is it|the time)\b", re.I)
_CONVERT = re.compile(
    r"\b(\d{1,2}:\d{2})\s+(?:in\s+)?([A-Za-z][A-Za-z _/]*?)\s+(?:to|in)\s+([A-Za-z][A-Za-z _/]*[A-Za-z])\b", re.I
)
_NUMBER = r"\(*\s*-?\d+(?:\.\d+)?\s*\)*"
_ARITHMETIC = re.compile(rf"{_NUMBER}(?:\s*(?:\*\*|//|[-+*/%^×÷])\s*{_NUMBER})+")
_TOKEN = re.compile(r"\s*(?:\w+|[^\w\s])|\s+")
_WHEN = r"(?:in|at|on|tomorrow|tonight|next|every)\b"
_REMIND = re.compile(rf"\bremind me\s+(?P<when>{_WHEN}.*?)\s+to\s+(?P<what>[^.!?\n]+)", re.I)
_REMIND_TO = re.compile(rf"\bremind me to\s+(?P<what>.+?)\s+(?P<when>{_WHEN}[^.!?\n]*)", re.I)
_LIST_SCHEDULES = re.compile(
    r"\b(?:what(?:'s| is) scheduled|(?:list|show)(?: me)? (?:my |the )?(?:scheduled messages|schedules|reminders))",
    re.I)
# schedule_message's result (conversation/tools/schedule_tools.py): what a model tells the person in its own words
_SCHEDULED = re.compile(r"Scheduled \((?P<id>\w+)\): (?P<when>.+?)\.(?: |$)")
_CANCEL_SCHEDULE = re.compile(r"\bcancel (?:the )?(?:schedule|reminder|scheduled message)\s+([0-9A-Za-z]{26})\b",
                              re.I)

# What a forced tool choice calls when the message asks for nothing: the tools that need nothing from it.
_FORCED_ARGS: dict[str, dict[str, Any]] = {
    "get_current_time": {"timezone": "UTC"},
    "end_conversation": {"reason": "a tool call was required"},
}


def _zone(place: str) -> str:
    key = place.strip().lower().removesuffix(" right now").removesuffix(" now").strip(" ?.!")
    return CITY_TIMEZONES.get(key, place.strip(" ?.!"))


def _text(message: BaseMessage) -> str:
    return message.content if isinstance(message.content, str) else str(message.content)


def tokens(text: str) -> list[str]:
    """`text` as the offline model's tokens: a word or one other non-space character, each with the whitespace
    before it (trailing whitespace is one more token), so that they join back into `text` exactly."""
    return _TOKEN.findall(text)


def plan_tool_calls(text: str) -> list[tuple[str, dict[str, Any]]]:
    """The (tool, arguments) pairs the offline model wants for one human message, in order."""
    calls: list[tuple[str, dict[str, Any]]] = []
    email, phone = _EMAIL.search(text), _PHONE.search(_EMAIL.sub(" ", text))
    if email or phone:
        args: dict[str, Any] = {}
        if name := _NAME.search(text):
            args["full_name"] = name.group(1)
        if email:
            args["email"] = email.group(0)
        if phone:
            args["phone"] = phone.group(0).strip()
        calls.append(("capture_lead", args))
    if convert := _CONVERT.search(text):
        clock, first, second = convert.groups()
        if first.strip().lower() == "utc":
            calls.append(("convert_to_from_utc", {"time": clock, "timezone": _zone(second), "direction": "from_utc"}))
        else:
            calls.append(("convert_to_from_utc", {"time": clock, "timezone": _zone(first), "direction": "to_utc"}))
    elif place := _TIME_IN.search(text):
        calls.append(("get_current_time", {"timezone": _zone(place.group(1))}))
    elif _TIME.search(text):
        calls.append(("get_current_time", {"timezone": "UTC"}))
    elif not (email or phone) and (expression := _ARITHMETIC.search(text)):
        calls.append(("calculator", {"expression": expression.group(0).strip()}))
    if remind := _REMIND.search(text) or _REMIND_TO.search(text):
        calls.append(("schedule_message", {"recipient": "chatbot", "when": remind.group("when").strip(),
                                           "message": f"Remind the person to {remind.group('what').strip()}"}))
    if _LIST_SCHEDULES.search(text):
        calls.append(("list_schedules", {}))
    if cancel := _CANCEL_SCHEDULE.search(text):
        calls.append(("cancel_schedule", {"schedule_id": cancel.group(1).upper()}))
    if _BYE.search(text):
        calls.append(("end_conversation", {"reason": "the person said goodbye"}))
    return calls


def _call_id(messages: Sequence[BaseMessage], name: str, index: int) -> str:
    basis = "|".join([str(len(messages)), _text(messages[-1]), name, str(index)])
    return "call_" + hashlib.sha256(basis.encode()).hexdigest()[:24]


def _allowed(bound: list[str], tool_choice: str | dict[str, Any] | bool | None) -> tuple[list[str], bool]:
    """The bound tools `tool_choice` lets the model call, and whether it must call one."""
    if tool_choice in (None, "auto"):
        return bound, False
    if tool_choice in ("none", False):
        return [], False
    if tool_choice in ("any", "required", True):
        return bound, True
    name = tool_choice
    if isinstance(tool_choice, dict):  # OpenAI's {"type": "function", "function": {"name": ...}}
        name = tool_choice.get("function", {}).get("name")
    if isinstance(name, str) and name in bound:
        return [name], True
    raise ValueError(f"tool_choice {tool_choice!r} names none of the bound tools {bound}")


def _reply(
    messages: Sequence[BaseMessage], allowed: list[str], forced: bool
) -> tuple[str, list[tuple[str, dict[str, Any]]]]:
    """The reply's text and its (tool, arguments) calls for `messages`, calling only `allowed` tools."""
    last = messages[-1] if messages else None
    if isinstance(last, ToolMessage):
        results: list[ToolMessage] = []
        for message in reversed(messages):
            if not isinstance(message, ToolMessage):
                break
            results.insert(0, message)
        return _answer_from_tools(results), []
    if isinstance(last, HumanMessage):
        calls = [(name, args) for name, args in plan_tool_calls(_text(last)) if name in allowed]
        if forced and not calls:
            calls = [(name, dict(args)) for name, args in _FORCED_ARGS.items() if name in allowed][:1]
        if calls:
            return "", calls
    return _answer_from_history(messages), []


def _tool_call_chunk(index: int, *, args: str, name: str | None = None, call_id: str | None = None
                     ) -> ChatGenerationChunk:
    """A piece of tool call `index`: its name and id come first, its JSON arguments in the pieces after."""
    piece = ToolCallChunk(name=name, args=args, id=call_id, index=index, type="tool_call_chunk")
    return ChatGenerationChunk(message=AIMessageChunk(content="", tool_call_chunks=[piece]))


def _answer_from_tools(results: list[ToolMessage]) -> str:
    parts = []
    for result in results:
        if result.name == "end_conversation":
            parts.append("Goodbye, and thanks for chatting!")
        elif result.name == "schedule_message" and (scheduled := _SCHEDULED.match(_text(result))):
            parts.append(f"I'll remind you: {scheduled.group('when')} (its id is {scheduled.group('id')}).")
        else:
            parts.append(_text(result))
    return " ".join(parts)


def _answer_from_history(messages: Sequence[BaseMessage]) -> str:
    said = [_text(m) for m in messages if isinstance(m, HumanMessage)]
    if not said:
        return "Hello! I'm the offline model. Ask me the time somewhere, some arithmetic, or leave your email."
    reply = f'You said: "{said[-1]}".'
    if len(said) == 1:
        reply += (
            " I'm the offline stand-in model: I can tell the time in a city, do arithmetic, save your "
            "contact details and end the chat."
        )
    else:
        reply += f' That is message {len(said)} I can see in this conversation; before it you said "{said[-2]}".'
    names = [match.group(1) for text in said if (match := _NAME.search(text))]
    if names:
        reply += f" I remember your name is {names[-1]}."
    return reply


class OfflineChatModel(BaseChatModel):
    """Deterministic, key-less stand-in chat model that can call OpenBrain's built-in tools.

    It streams: `_stream` yields one `AIMessageChunk` per token of the reply (see `tokens`), a tool call as
    `tool_call_chunks` (its name and id, then its JSON arguments token by token), and a last chunk that carries
    `response_metadata` and `usage_metadata`; `invoke` joins the same chunks. Token counts are a rough stand-in
    for a tokenizer: a token is a word or one other non-space character (`tokens`). `input_tokens` counts the
    text of every message it was given (tool definitions are not counted); `output_tokens` counts the reply's
    text plus each tool call's name and JSON arguments.

    `bind_tools` returns a `RunnableBinding` like every langchain chat model. `tool_choice`: `None`/"auto" calls
    the tools a message asks for; "none" calls none; "any"/"required" (or a tool's name) must call one (that
    one), so when the message asks for nothing it calls `get_current_time` in UTC or `end_conversation` if
    allowed. It cannot invent arguments for other tools: then it answers in text. A tool it has no rule for
    (anything but OpenBrain's built-in tools) is never called. `stop` and `max_tokens` cut the text reply.
    """

    max_tokens: int | None = None
    """Cut the text reply after this many tokens."""
    stop: list[str] | None = None
    """Cut the text reply before the first of these strings (a call's own `stop` takes precedence)."""

    @property
    def _llm_type(self) -> str:
        return "offline"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": MODEL_NAME, "max_tokens": self.max_tokens, "stop": self.stop}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = LangSmithParams(ls_provider=PROVIDER, ls_model_name=kwargs.get("model", MODEL_NAME),
                                 ls_model_type="chat")
        if self.max_tokens is not None:
            params["ls_max_tokens"] = self.max_tokens
        if stop := self._stop(stop):
            params["ls_stop"] = stop
        return params

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | dict[str, Any] | bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        formatted = [convert_to_openai_tool(tool) for tool in tools]
        _allowed([tool["function"]["name"] for tool in formatted], tool_choice)  # a wrong choice fails here
        return self.bind(tools=formatted, tool_choice=tool_choice, **kwargs)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        *,
        tools: Sequence[dict[str, Any]] = (),
        tool_choice: str | dict[str, Any] | bool | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        allowed, forced = _allowed([tool["function"]["name"] for tool in tools], tool_choice)
        text, calls = _reply(messages, allowed, forced)
        pieces = self._cut(text, stop)
        for piece in pieces:
            yield ChatGenerationChunk(message=AIMessageChunk(content=piece))
        output = len(pieces)
        for index, (name, args) in enumerate(calls):
            call_id = _call_id(messages, name, index)
            yield _tool_call_chunk(index, name=name, call_id=call_id, args="")
            arguments = tokens(json.dumps(args))
            for piece in arguments:
                yield _tool_call_chunk(index, args=piece)
            output += len(tokens(name)) + len(arguments)
        given = sum(len(tokens(_text(message))) for message in messages)
        usage = UsageMetadata(input_tokens=given, output_tokens=output, total_tokens=given + output)
        yield ChatGenerationChunk(message=AIMessageChunk(
            content="", response_metadata=dict(OFFLINE_METADATA), usage_metadata=usage, chunk_position="last"
        ))

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return generate_from_stream(self._stream(messages, stop, run_manager, **kwargs))

    def _stop(self, stop: list[str] | None) -> list[str]:
        return (stop if stop is not None else self.stop) or []

    def _cut(self, text: str, stop: list[str] | None) -> list[str]:
        """The tokens of `text` up to the first stop string and at most `max_tokens` of them."""
        ends = [text.find(marker) for marker in self._stop(stop) if marker]
        if found := [end for end in ends if end >= 0]:
            text = text[: min(found)]
        pieces = tokens(text)
        return pieces if self.max_tokens is None else pieces[: self.max_tokens]
