"""A session as its client sees it: its state and its transcript (`GET /sessions/{id}`, the tuner's inspector);
an end user's sessions (`GET /sessions?userId=`); its scheduled messages (`GET /sessions/{id}/schedules`, `DELETE
/sessions/{id}/schedules/{schedule_id}`, `ob-chat`'s `/schedules` and `/cancel`, `ob-admin schedules`).

`transcript(session)` is the one rendering of stored memory as messages: role (`user`, `assistant`, `tool`,
`system`), text, the tool calls an assistant message made and the call a tool message answers, and `scheduled`:
a message a schedule made (a prompt to the chatbot, role `user`, or a message to the person, role `assistant`:
docs/scheduling.md).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from openbrain.conversation import schedules
from openbrain.conversation.schedules import SCHEDULE_NAME, Schedule, schedules_of
from openbrain.domain.identity import validate_user_id
from openbrain.storage.orm.chat_session import session_not_found

if TYPE_CHECKING:
    from openbrain.aws.backend import Backend
    from openbrain.domain.identity import EndUser
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
    scheduled: bool = False


class ScheduledMessage(BaseModel):
    """A scheduled message waiting in a session (conversation/schedules.py)."""

    schedule_id: str
    recipient: str
    prompt: str
    time_prompt: str
    description: str
    expression: str
    timezone: str
    recurring: bool
    next_at: datetime
    created_at: datetime
    created_by: str
    deliveries: int

    @classmethod
    def of(cls, schedule: Schedule) -> ScheduledMessage:
        fields = {name: value for name, value in schedule.__dict__.items() if name != "id"}
        return cls(schedule_id=schedule.id, **fields)


class Schedules(BaseModel):
    session_id: str
    schedules: list[ScheduledMessage]


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
    schedules: list[ScheduledMessage] = Field(default_factory=list)


class SessionSummary(BaseModel):
    session_id: str
    profile_name: str
    turn_count: int
    created_at: datetime
    updated_at: datetime
    ended: bool


class UserSessions(BaseModel):
    user_id: str
    sessions: list[SessionSummary]


MAX_USER_SESSIONS = 100


def _session(stores: Stores, client_id: str, session_id: str, user: EndUser | None) -> ChatSession:
    session = stores.sessions.get(client_id, session_id)
    if user is not None and not user.may_use(session.end_user_id, session.profile_name):
        raise session_not_found(client_id, session_id)
    return session


def get_session(stores: Stores, client_id: str, session_id: str, user: EndUser | None = None) -> Session:
    """Session `session_id` of `client_id` with its transcript; `NotFoundError` if missing or expired, or (with
    `user`, a caller's end user) one `user` may not use, which reads the same."""
    session = _session(stores, client_id, session_id, user)
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
        schedules=[ScheduledMessage.of(schedule) for schedule in schedules_of(session)],
    )


def session_schedules(stores: Stores, client_id: str, session_id: str, user: EndUser | None = None) -> Schedules:
    """The scheduled messages waiting in a session, soonest first (`NotFoundError` as `get_session`)."""
    session = _session(stores, client_id, session_id, user)
    return Schedules(session_id=session_id, schedules=[ScheduledMessage.of(s) for s in schedules_of(session)])


def cancel_schedule(backend: Backend, client_id: str, session_id: str, schedule_id: str,
                    user: EndUser | None = None) -> ScheduledMessage:
    """Cancel a waiting scheduled message of a session (`NotFoundError`: no such session, or no such schedule)."""
    session = _session(backend.stores, client_id, session_id, user)
    return ScheduledMessage.of(schedules.cancel(session, backend, schedule_id))


def client_schedules(stores: Stores, client_id: str) -> list[Schedules]:
    """Every session of `client_id` with scheduled messages waiting, and them (`ob-admin schedules list`)."""
    return [Schedules(session_id=s.session_id, schedules=[ScheduledMessage.of(x) for x in schedules_of(s)])
            for s in stores.sessions.of_client(client_id) if s.schedules]


def user_sessions(stores: Stores, client_id: str, user_id: str, limit: int = MAX_USER_SESSIONS) -> UserSessions:
    """The sessions of `client_id` bound to end user `user_id`, last updated first, at most `limit`."""
    found = stores.sessions.of_user(client_id, validate_user_id(user_id), limit=limit)
    return UserSessions(user_id=user_id, sessions=[
        SessionSummary(session_id=s.session_id, profile_name=s.profile_name, turn_count=int(s.turn_count),
                       created_at=s.created_at, updated_at=s.updated_at, ended=s.ended)
        for s in found])


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
        scheduled=getattr(message, "name", None) == SCHEDULE_NAME,
    )
