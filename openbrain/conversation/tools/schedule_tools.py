"""schedule_message, list_schedules, cancel_schedule: the model's side of scheduled messages (docs/scheduling.md).

The same semantics as a `dps` command (conversation/schedules.py): what the tools add or cancel rides the turn's
commit; a refusal (a time not understood, a limit) is told to the model, which tells the person.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field

from openbrain.core.errors import InvalidInputError, NotFoundError, ScheduleLimitError, SessionEndedError

if TYPE_CHECKING:
    from openbrain.conversation.tools.context import ToolContext

SCHEDULE_DESCRIPTION = (
    "Schedule a message for later in this conversation. recipient 'chatbot': at that time you get `message` as "
    "an instruction and your answer is sent to the person (use it for reminders: 'remind me tomorrow at 9' -> "
    "recipient chatbot, when 'tomorrow at 9', message 'Remind the person to ...'). recipient 'user': `message` "
    "itself is sent to the person at that time. `when` is natural language: 'in 20 minutes', 'tomorrow evening', "
    "'every weekday at 9'."
)
LIST_DESCRIPTION = "List the scheduled messages waiting in this conversation, with their ids and times."
CANCEL_DESCRIPTION = "Cancel a scheduled message of this conversation by its id (list_schedules shows the ids)."


class ScheduleArgs(BaseModel):
    recipient: Literal["chatbot", "user"] = Field(
        description="'chatbot': you answer `message` then; 'user': `message` is sent as is")
    when: str = Field(description="when, in natural language: 'in 5 minutes', 'every day at 8am'")
    message: str = Field(description="the instruction to you (chatbot) or the text for the person (user)")


class ListArgs(BaseModel):
    recipient: Literal["chatbot", "user"] | None = Field(None, description="only those to this recipient [all]")


class CancelArgs(BaseModel):
    schedule_id: str = Field(description="the id list_schedules or the scheduling confirmation gave")


def schedule_message(context: ToolContext, tool_call_id: str, recipient: str, when: str, message: str) -> str:
    if context.schedules is None:
        return "Scheduling is not available in this conversation."
    try:
        added = context.schedules.add(recipient, when, message, created_by="model", tool_call_id=tool_call_id)
    except (InvalidInputError, ScheduleLimitError, SessionEndedError) as exc:
        return f"Not scheduled: {exc}"
    return f"Scheduled ({added.id}): {added.description}. Tell the person when it will come, in their words."


def list_schedules(context: ToolContext, tool_call_id: str, recipient: str | None = None) -> str:
    waiting = [s for s in (context.schedules.schedules if context.schedules else [])
               if recipient is None or s.recipient == recipient]
    if not waiting:
        return "No scheduled messages are waiting in this conversation."
    return "\n".join(f"- {s.id}: to the {s.recipient}, {s.description}: {s.prompt}" for s in waiting)


def cancel_schedule(context: ToolContext, tool_call_id: str, schedule_id: str) -> str:
    if context.schedules is None:
        return "Scheduling is not available in this conversation."
    try:
        cancelled = context.schedules.cancel(schedule_id.strip())
    except NotFoundError as exc:
        return f"Not cancelled: {exc}"
    return f"Cancelled the scheduled message {cancelled.id} ({cancelled.description})."
