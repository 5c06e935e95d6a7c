"""A scripted chat model for agent tests: replays AIMessages (tool calls included) and records its inputs.

    model = ScriptedChatModel(replies=[tool_call_reply("calculator", {"expression": "6*7"}), AIMessage("42")])
    model = ScriptedChatModel(forever=lambda n: tool_call_reply("calculator", {"expression": "1+1"}, n))

Each call takes the next reply; once they are used up, `forever(call_number)` answers (or the call fails,
so a test never silently gets an answer it did not script). `delay` seconds pass before each answer;
`error`, if set, is raised instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import Field


def tool_call_reply(name: str, args: dict[str, Any], number: int = 1) -> AIMessage:
    call = {"name": name, "args": args, "id": f"call_scripted_{number}", "type": "tool_call"}
    return AIMessage("", tool_calls=[call])


class ScriptedChatModel(BaseChatModel):
    replies: list[AIMessage] = Field(default_factory=list)
    forever: Callable[[int], AIMessage] | None = None
    error: Exception | None = None  # raised by every call
    delay: float = 0.0
    # Shared by copies: what each call received, and the tools the agent bound.
    received: list[list[BaseMessage]] = Field(default_factory=list)
    bound_tools: list[str] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    @property
    def calls(self) -> int:
        return len(self.received)

    def bind_tools(self, tools: Sequence[Any], *, tool_choice: Any = None, **kwargs: Any) -> ScriptedChatModel:  # type: ignore[override]
        self.bound_tools[:] = [convert_to_openai_tool(tool)["function"]["name"] for tool in tools]
        return self

    def _generate(
        self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        self.received.append(list(messages))
        if self.delay:
            time.sleep(self.delay)
        if self.error is not None:
            raise self.error
        index = len(self.received) - 1
        if index < len(self.replies):
            reply = self.replies[index]
        elif self.forever is not None:
            reply = self.forever(index + 1)
        else:
            raise AssertionError(f"the scripted model has no reply for call {index + 1}")
        return ChatResult(generations=[ChatGeneration(message=reply)])
