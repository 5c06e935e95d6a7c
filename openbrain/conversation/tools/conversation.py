"""end_conversation: mark the session ended when the person is done."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from openbrain.domain.events import ConversationEnded

if TYPE_CHECKING:
    from openbrain.conversation.tools.context import ToolContext

DESCRIPTION = "End the conversation when the person says goodbye or has nothing more to ask."


class EndConversationArgs(BaseModel):
    reason: str | None = Field(None, description="why the conversation ends, in a few words")


def end_conversation(context: ToolContext, tool_call_id: str, reason: str | None = None) -> str:
    if context.ended:
        return "The conversation is already ended."
    context.ended = True
    event = ConversationEnded(
        client_id=context.client_id, session_id=context.session_id, tool_call_id=tool_call_id,
        turn_count=context.turn, lead_id=context.lead_id,
    )
    context.emit(event)
    return "The conversation is ended. Say a short goodbye."
