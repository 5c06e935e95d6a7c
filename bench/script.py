"""The fixed conversation every contender replays, and the zero-latency scripted chat model they all share.

Turn `n` sends `user_message(n, chars)`: odd turns ask for a calculation, so the model calls the
`calculator` tool, reads its result and answers; even turns are answered at once. Every text is padded
to `chars` characters with words drawn from a small vocabulary by a generator seeded with the turn
number (deterministic, and about as compressible as English: zlib shrinks it ~2.5x, not ~100x as it
would a repeated string).

`ScriptedChatModel` decides from its input alone (no state, no sleep), so ours and the peers get the
same replies for the same turn whatever history each of them passes in.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from typing import Any

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from openbrain.conversation.tools import calculator
from openbrain.domain.profile import DEFAULT_SYSTEM_MESSAGE

SYSTEM_PROMPT = DEFAULT_SYSTEM_MESSAGE
TOOL_NAME = "calculator"
_VOCABULARY = (
    "the a of to and in that is for it as with was on be by this are from at or have an they which one you "
    "were all we her she there would their will when who him been has more if no out so said what up its "
    "about into than them can only other new some could time these two may then do first any my now such "
    "like our over man me even most made after also did many before must through back years where much your "
    "way well down should because each just those people how too little state good very make world still own "
    "see men work long get here between both life being under never day same another know while last might "
    "us great old year off come since against go came right used take three order plan lead price account"
)
_WORDS = tuple(_VOCABULARY.split(" "))
_TURN = re.compile(r"^Turn (\d+):")
_CALCULATE = re.compile(r"please calculate ([0-9 *+]+)\.")


def _pad(head: str, chars: int, seed: int) -> str:
    rng = random.Random(seed)  # noqa: S311 - filler text, not security
    words = [head]
    length = len(head)
    while length < chars:
        word = rng.choice(_WORDS)
        words.append(word)
        length += len(word) + 1
    return " ".join(words)[:max(chars, len(head))]


def user_message(turn: int, chars: int = 200) -> str:
    """The person's message of turn `turn` (1-based): a calculation on odd turns, small talk on even ones."""
    head = f"Turn {turn}: please calculate {turn} * 7." if turn % 2 else f"Turn {turn}: tell me more about that."
    return _pad(head, chars, turn)


def _reply(turn: int, chars: int, result: str) -> str:
    head = f"Answer {turn}: {result}." if result else f"Answer {turn}:"
    return _pad(head, chars, 1_000_000 + turn)


class ScriptedChatModel(BaseChatModel):
    """Replies at once: a `calculator` tool call to a calculation request, else a `reply_chars` answer."""

    reply_chars: int = 200

    @property
    def _llm_type(self) -> str:
        return "bench-scripted"

    def bind_tools(self, tools: Sequence[Any], *, tool_choice: Any = None, **kwargs: Any) -> ScriptedChatModel:  # type: ignore[override]
        return self

    def _generate(
        self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        last = messages[-1]
        human = next((m for m in reversed(messages) if isinstance(m, HumanMessage)), None)
        text = human.content if human is not None and isinstance(human.content, str) else ""
        found = _TURN.match(text)
        turn = int(found.group(1)) if found else 0
        calculation = _CALCULATE.search(text)
        if isinstance(last, HumanMessage) and calculation:
            call = {"name": TOOL_NAME, "args": {"expression": calculation.group(1)}, "id": f"call_{turn}",
                    "type": "tool_call"}
            message = AIMessage("", tool_calls=[call])
        else:
            result = str(last.content) if isinstance(last, ToolMessage) else ""
            message = AIMessage(_reply(turn, self.reply_chars, result))
        return ChatResult(generations=[ChatGeneration(message=message)])


def peer_tools() -> list[Any]:
    """The peers' `calculator`: the same description, schema and arithmetic as ours, as a plain langchain tool
    (ours reaches it through `openbrain.conversation.tools.registry`, which also hands it the turn's ToolContext)."""
    from langchain_core.tools import StructuredTool

    def run(expression: str) -> str:
        try:
            return f"{expression.strip()} = {calculator.format_number(calculator.evaluate(expression))}"
        except calculator.CalculationError as exc:
            return f"Cannot calculate {expression.strip()!r}: {exc}."

    return [StructuredTool.from_function(run, name=TOOL_NAME, description=calculator.DESCRIPTION,
                                         args_schema=calculator.CalculatorArgs)]
