"""Domain events: what the tools and targets tell the rest of the system.

Every event is a pydantic model with a versioned detail type (`lead.captured.v1`). Its detail carries
the ids a target needs to load what it acts on (never the lead's personal data, never a secret; a delivered
scheduled message carries its text, which the client's webhook sends on) and an
idempotency key that stays the same if the same tool call is delivered twice. The JSON of each event is
documented in docs/events.md and pinned by tests/domain/test_event_contracts.py. They are sent by
`openbrain.aws.events.EventPublisher`, the one module that calls `put_events`.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from openbrain.core.clock import utcnow
from openbrain.core.ids import new_id

EVENT_SOURCE = "openbrain"


class Event(BaseModel):
    """Base of every event. Subclasses set `detail_type` and add their object's id."""

    model_config = ConfigDict(frozen=True)
    detail_type: ClassVar[str]

    event_id: str = Field(default_factory=new_id)
    occurred_at: datetime = Field(default_factory=utcnow)
    client_id: str
    session_id: str
    tool_call_id: str
    idempotency_key: str = ""

    def model_post_init(self, context: Any) -> None:
        if not self.idempotency_key:
            basis = f"{self.detail_type}|{self.client_id}|{self.session_id}|{self.object_id()}|{self.tool_call_id}"
            object.__setattr__(self, "idempotency_key", hashlib.sha256(basis.encode()).hexdigest()[:32])

    def object_id(self) -> str:
        return self.session_id

    def detail(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def summary(self) -> dict[str, Any]:
        """The short form a chat response and a session's history carry."""
        return {"type": self.detail_type, "event_id": self.event_id, "object_id": self.object_id()}


class LeadCaptured(Event):
    detail_type: ClassVar[str] = "lead.captured.v1"
    lead_id: str

    def object_id(self) -> str:
        return self.lead_id


class LeadUpdated(Event):
    detail_type: ClassVar[str] = "lead.updated.v1"
    lead_id: str
    changed_fields: list[str]

    def object_id(self) -> str:
        return self.lead_id


class ConversationEnded(Event):
    detail_type: ClassVar[str] = "conversation.ended.v1"
    turn_count: int
    lead_id: str | None = None


class LeadDelivered(Event):
    """A target delivered a lead event (`delivered_event_type`) to the client: emitted by the target, not a
    tool, so `session_id` and `tool_call_id` are those of the delivered event (its idempotency key stays
    the same when the same delivery is reported twice)."""

    detail_type: ClassVar[str] = "lead.delivered.v1"
    lead_id: str
    target: str
    delivered_event_type: str
    delivered_event_id: str
    delivered_idempotency_key: str

    def object_id(self) -> str:
        return self.lead_id


class MessageScheduled(Event):
    """A message was scheduled in a session (`dps`, the `schedule_message` tool or the API). `next_at` is the first
    time it fires (aware UTC); `description` says when for people, in the session's time zone. `tool_call_id` is
    the tool call's, or the schedule id when no tool made it."""

    detail_type: ClassVar[str] = "message.scheduled.v1"
    schedule_id: str
    recipient: str  # "user" | "chatbot"
    expression: str  # EventBridge Scheduler's: at(...), cron(...), rate(...)
    timezone: str  # IANA
    description: str
    next_at: datetime
    created_by: str  # "user" | "model" | "api"

    def object_id(self) -> str:
        return self.schedule_id


class MessageDelivered(Event):
    """A scheduled message was delivered to the session: `text` is what the user got (the prompt for `user`, the
    bot's reply for `chatbot`), carried so that a client's webhook can send it on by e-mail or SMS. `tool_call_id`
    is the time it was due (ISO), so each delivery of a recurring schedule has its own idempotency key."""

    detail_type: ClassVar[str] = "message.delivered.v1"
    schedule_id: str
    recipient: str
    text: str
    delivered_at: datetime

    def object_id(self) -> str:
        return self.schedule_id


EVENT_TYPES: dict[str, type[Event]] = {
    cls.detail_type: cls for cls in (LeadCaptured, LeadUpdated, ConversationEnded, LeadDelivered, MessageScheduled,
                                     MessageDelivered)
}


def to_outbox(events: list[Event]) -> list[dict[str, Any]]:
    """Events as a session's outbox stores them (JSON; docs/events.md)."""
    return [{"type": event.detail_type, "detail": event.detail()} for event in events]


def from_outbox(entries: list[dict[str, Any]] | None) -> list[Event]:
    """A session's stored outbox as events (the same ids, times and idempotency keys)."""
    return [EVENT_TYPES[entry["type"]].model_validate(entry["detail"]) for entry in entries or []]
