"""`GET /sessions/{session_id}`: a session's transcript and state, so a UI can reload and resume."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aws_lambda_powertools.event_handler.api_gateway import Router
from pydantic import BaseModel, Field

from openbrain.storage.orm import ChatSession

from ..context import current_client, existing_id
from .security import API_KEY

router = Router()

_ROLES = {"human": "user", "ai": "assistant", "tool": "tool", "system": "system"}


class ToolCall(BaseModel):
    id: str | None = None
    name: str
    args: dict[str, Any] = Field(default_factory=dict)


class Message(BaseModel):
    role: str
    content: str
    tool_calls: list[ToolCall] = Field(default_factory=list)
    tool_call_id: str | None = None


class Session(BaseModel):
    session_id: str
    client_id: str
    profile_name: str
    lead_id: str | None
    turn_count: int
    trimmed_messages: int
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None
    ended: bool
    ended_at: datetime | None
    messages: list[Message]


def _message(message: Any) -> Message:
    return Message(
        role=_ROLES.get(message.type, message.type),
        content=message.content if isinstance(message.content, str) else message.text,
        tool_calls=[ToolCall(id=c.get("id"), name=c["name"], args=c.get("args") or {})
                    for c in getattr(message, "tool_calls", None) or []],
        tool_call_id=getattr(message, "tool_call_id", None),
    )


@router.get("/sessions/<session_id>", summary="A session's messages and state", tags=["sessions"], security=API_KEY)
def get_session(session_id: str) -> Session:
    from openbrain.storage import memory_codec  # langchain_core: only this route pays for it

    client = current_client(router)
    session = ChatSession.get(client.client_id, existing_id(session_id, "session"))
    return Session(
        session_id=session.session_id,
        client_id=session.client_id,
        profile_name=session.profile_name,
        lead_id=session.lead_id,
        turn_count=int(session.turn_count),
        trimmed_messages=int(session.trimmed_messages),
        created_at=session.created_at,
        updated_at=session.updated_at,
        expires_at=session.expires_at,
        ended=session.ended,
        ended_at=session.ended_at,
        messages=[_message(m) for m in memory_codec.loads(session.memory)],
    )
