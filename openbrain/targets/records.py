"""What a target's SQS message carries: an EventBridge envelope (as the rule delivered it) of one event."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from openbrain.core.errors import InvalidInputError
from openbrain.domain.events import EVENT_SOURCE, EVENT_TYPES, Event


class MalformedRecordError(InvalidInputError):
    """An SQS message body that is not an OpenBrain event envelope."""

    code = "malformed_record"


@dataclass(frozen=True)
class EventRecord:
    """An event read back from a queue message, with the envelope's id (EventBridge's, not ours)."""

    event: Event
    envelope_id: str | None

    @property
    def detail_type(self) -> str:
        return self.event.detail_type


def parse_body(body: str) -> EventRecord:
    """The event in an SQS message body. Raises `MalformedRecordError` (naming no values) if it is not JSON,
    not from OpenBrain, of an unknown detail type, or its detail does not match that type."""
    try:
        envelope: Any = json.loads(body)
    except (TypeError, ValueError) as exc:
        raise MalformedRecordError("the message body is not JSON") from exc
    if not isinstance(envelope, dict):
        raise MalformedRecordError("the message body is not an event envelope")
    if envelope.get("source") != EVENT_SOURCE:
        raise MalformedRecordError("the event is not from source 'openbrain'")
    detail_type = envelope.get("detail-type")
    model = EVENT_TYPES.get(detail_type) if isinstance(detail_type, str) else None
    if model is None:
        raise MalformedRecordError(f"unknown detail type {str(detail_type)[:60]!r}")
    try:
        event = model.model_validate(envelope.get("detail"))
    except ValidationError as exc:
        fields = sorted({".".join(str(p) for p in e["loc"]) or "detail" for e in exc.errors()})
        raise MalformedRecordError(f"the {detail_type} detail is invalid ({', '.join(fields)})") from exc
    envelope_id = envelope.get("id")
    return EventRecord(event=event, envelope_id=envelope_id if isinstance(envelope_id, str) else None)
