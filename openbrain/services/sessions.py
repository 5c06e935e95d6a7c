"""A session as its client sees it: its state and its transcript (`GET /sessions/{id}`, the tuner's inspector).

`transcript(session)` is the one rendering of stored memory as messages: role (`user`, `assistant`, `tool`,
`system`), text, the tool calls an assistant message made and the call a tool message answers.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from openbrain.storage.orm import ChatSession
    from openbrain.storage.stores import Stores

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


def get_session(stores: Stores, client_id: str, session_id: str) -> Session:
    """Session `session_id` of `client_id` with its transcript; `NotFoundError` if missing or expired."""
    session = stores.sessions.get(client_id, session_id)
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
        messages=transcript(session),
    )


def transcript(session: ChatSession) -> list[Message]:
    """The session's stored messages, oldest first."""
    from openbrain.storage import memory_codec  # langchain_core: only readers of a transcript pay for it

    return [_message(m) for m in memory_codec.loads(session.memory)]


def _message(message: Any) -> Message:
    return Message(
        role=_ROLES.get(message.type, message.type),
        content=message.content if isinstance(message.content, str) else message.text,
        tool_calls=[ToolCall(id=c.get("id"), name=c["name"], args=c.get("args") or {})
                    for c in getattr(message, "tool_calls", None) or []],
        tool_call_id=getattr(message, "tool_call_id", None),
    )
