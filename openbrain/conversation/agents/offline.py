"""`offline`: a deterministic chat model that needs no key and no network.

It reads the latest human message and, when the matching tool is bound, calls it:
- "what time is it in Tokyo"                       -> get_current_time(timezone="Asia/Tokyo")
- "convert 14:30 London to UTC" / "09:00 UTC in Paris" -> convert_to_from_utc(...)
- "what is (17 + 5) * 3"                            -> calculator(expression="(17 + 5) * 3")
- "my name is Ada Lovelace, email ada@example.com"  -> capture_lead(full_name=..., email=...)
- "goodbye"                                          -> end_conversation()
After tool results it answers from them; otherwise it answers in a way that shows it sees the
conversation history. Every reply carries `response_metadata={"model_name": "offline", "offline": True}`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Any

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.utils.function_calling import convert_to_openai_tool

OFFLINE_METADATA = {"model_name": "offline", "offline": True}

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


def _zone(place: str) -> str:
    key = place.strip().lower().removesuffix(" right now").removesuffix(" now").strip(" ?.!")
    return CITY_TIMEZONES.get(key, place.strip(" ?.!"))


def _text(message: BaseMessage) -> str:
    return message.content if isinstance(message.content, str) else str(message.content)


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
    if _BYE.search(text):
        calls.append(("end_conversation", {"reason": "the person said goodbye"}))
    return calls


def _call_id(messages: Sequence[BaseMessage], name: str, index: int) -> str:
    basis = "|".join([str(len(messages)), _text(messages[-1]), name, str(index)])
    return "call_" + hashlib.sha256(basis.encode()).hexdigest()[:24]


def _answer_from_tools(results: list[ToolMessage]) -> str:
    parts = []
    for result in results:
        if result.name == "end_conversation":
            parts.append("Goodbye, and thanks for chatting!")
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
    """Deterministic, key-less stand-in chat model that can call OpenBrain's built-in tools."""

    tool_names: tuple[str, ...] = ()

    @property
    def _llm_type(self) -> str:
        return "offline"

    def bind_tools(self, tools: Sequence[Any], *, tool_choice: Any = None, **kwargs: Any) -> OfflineChatModel:  # type: ignore[override]
        names = tuple(convert_to_openai_tool(tool)["function"]["name"] for tool in tools)
        return self.model_copy(update={"tool_names": names})

    def respond(self, messages: Sequence[BaseMessage]) -> AIMessage:
        last = messages[-1] if messages else None
        if isinstance(last, ToolMessage):
            results: list[ToolMessage] = []
            for message in reversed(messages):
                if not isinstance(message, ToolMessage):
                    break
                results.insert(0, message)
            return AIMessage(_answer_from_tools(results), response_metadata=dict(OFFLINE_METADATA))
        if isinstance(last, HumanMessage):
            calls = [(n, a) for n, a in plan_tool_calls(_text(last)) if n in self.tool_names]
            if calls:
                return AIMessage(
                    "",
                    tool_calls=[
                        {"name": name, "args": args, "id": _call_id(messages, name, i), "type": "tool_call"}
                        for i, (name, args) in enumerate(calls)
                    ],
                    response_metadata=dict(OFFLINE_METADATA),
                )
        return AIMessage(_answer_from_history(messages), response_metadata=dict(OFFLINE_METADATA))

    def _generate(
        self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self.respond(messages))])
