"""Inspect and redrive a target's dead-letter queue (`ob-admin dlq list|redrive`).

A message lands in a target's DLQ after `maxReceiveCount` failed receives on the target's queue, with its
original body: the EventBridge envelope of the event, which is everything needed to try again.

- `list_dead_letters` reads the DLQ without consuming it: each message is received with a short
  visibility timeout and made visible again at once (ChangeMessageVisibility 0), never deleted. Receiving
  counts as a receive, so a message's `receive_count` also counts earlier listings.
- `redrive` moves messages back to the target's queue: send to the queue first, then delete from the DLQ,
  so a crash in between leaves a duplicate (which the idempotent target acknowledges), never a loss.
  A moved message is a new message to SQS: its receive count starts again, so it gets every retry anew.
  With a `handler` (the target's Lambda handler), the queue is then drained through it right away, which
  is what the target's Lambda would do; on one machine nothing else polls. (SQS's own
  StartMessageMoveTask is not used: moto does not implement it, and receive/send/delete works on any
  SQS-compatible endpoint.)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from openbrain.targets.poller import Handler, PollResult, drain
from openbrain.targets.queues import dlq_url, source_queue_url, target_named
from openbrain.targets.records import MalformedRecordError, parse_body

if TYPE_CHECKING:
    from openbrain.aws.backend import Backend

LIST_VISIBILITY_SECONDS = 30  # if a listing dies before un-hiding them, messages reappear this soon
MOVE_VISIBILITY_SECONDS = 60
REDRIVE_COUNT_ATTRIBUTE = "openbrain-redrive-count"
DEFAULT_LIMIT = 1000

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeadLetter:
    """One dead-lettered message. Event fields are `None` when the body is not a readable event (`error`)."""

    message_id: str
    event_type: str | None
    event_id: str | None
    idempotency_key: str | None
    client_id: str | None
    receive_count: int
    first_failure_at: datetime | None
    sent_at: datetime | None
    redrive_count: int = 0
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        for key in ("first_failure_at", "sent_at"):
            value = data[key]
            data[key] = value.isoformat() if value else None
        return data


@dataclass
class RedriveResult:
    """What a redrive did: messages moved back to the target's queue, and (with a handler) how they fared."""

    target: str
    moved: int = 0
    message_ids: list[str] = field(default_factory=list)
    batches: list[PollResult] = field(default_factory=list)

    @property
    def processed(self) -> int:
        return sum(len(b.received) for b in self.batches)

    @property
    def failed(self) -> int:
        return sum(len(b.failed) for b in self.batches)

    def as_dict(self) -> dict[str, Any]:
        return {"target": self.target, "moved": self.moved, "message_ids": self.message_ids,
                "processed": self.processed, "failed": self.failed}


def _wait_seconds(backend: Backend) -> int:
    # Short polling (0) on real SQS samples a subset of servers and may miss messages; moto has one.
    return 0 if backend.kind == "memory" else 1


def _millis(value: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(value) / 1000, tz=UTC)
    except (TypeError, ValueError):
        return None


def _dead_letter(message: dict[str, Any]) -> DeadLetter:
    attributes = message.get("Attributes", {})
    redrives = message.get("MessageAttributes", {}).get(REDRIVE_COUNT_ATTRIBUTE, {}).get("StringValue")
    common = {
        "message_id": message["MessageId"],
        "receive_count": int(attributes.get("ApproximateReceiveCount", 0)),
        "first_failure_at": _millis(attributes.get("ApproximateFirstReceiveTimestamp")),
        "sent_at": _millis(attributes.get("SentTimestamp")),
        "redrive_count": int(redrives) if redrives and redrives.isdigit() else 0,
    }
    try:
        event = parse_body(message["Body"]).event
    except MalformedRecordError as exc:
        return DeadLetter(event_type=None, event_id=None, idempotency_key=None, client_id=None, error=exc.message,
                          **common)
    return DeadLetter(event_type=event.detail_type, event_id=event.event_id, idempotency_key=event.idempotency_key,
                      client_id=event.client_id, **common)


def _receive(backend: Backend, url: str, visibility: int, count: int = 10) -> list[dict[str, Any]]:
    response = backend.client("sqs").receive_message(
        QueueUrl=url, MaxNumberOfMessages=min(10, count), VisibilityTimeout=visibility,
        WaitTimeSeconds=_wait_seconds(backend), AttributeNames=["All"], MessageAttributeNames=["All"],
    )
    return list(response.get("Messages", []))


def list_dead_letters(backend: Backend, target_name: str, *, limit: int = DEFAULT_LIMIT) -> list[DeadLetter]:
    """Every message in the target's DLQ (up to `limit`), oldest first; nothing is deleted or kept hidden."""
    target = target_named(target_name)
    url = dlq_url(backend, target)
    sqs = backend.client("sqs")
    seen: dict[str, DeadLetter] = {}
    handles: list[str] = []
    try:
        while len(seen) < limit:
            batch = _receive(backend, url, LIST_VISIBILITY_SECONDS, limit - len(seen))
            if not batch:
                break
            for message in batch:
                handles.append(message["ReceiptHandle"])
                seen.setdefault(message["MessageId"], _dead_letter(message))
    finally:
        for start in range(0, len(handles), 10):
            chunk = handles[start:start + 10]
            sqs.change_message_visibility_batch(
                QueueUrl=url,
                Entries=[{"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": 0} for i, h in enumerate(chunk)],
            )
    return sorted(seen.values(), key=lambda d: (d.sent_at or datetime.min.replace(tzinfo=UTC), d.message_id))


def redrive(
    backend: Backend, target_name: str, handler: Handler | None = None, *, limit: int = DEFAULT_LIMIT
) -> RedriveResult:
    """Move up to `limit` messages from the target's DLQ back to its queue; with `handler`, then run the
    queue through it once (see the module docstring)."""
    target = target_named(target_name)
    sqs = backend.client("sqs")
    source, dead = source_queue_url(backend, target), dlq_url(backend, target)
    result = RedriveResult(target=target.name)
    while result.moved < limit:
        batch = _receive(backend, dead, MOVE_VISIBILITY_SECONDS, limit - result.moved)
        if not batch:
            break
        entries = []
        for i, message in enumerate(batch):
            attributes = {
                name: {k: v for k, v in value.items() if k in ("DataType", "StringValue", "BinaryValue")}
                for name, value in message.get("MessageAttributes", {}).items()
            }
            previous = attributes.get(REDRIVE_COUNT_ATTRIBUTE, {}).get("StringValue", "0")
            count = int(previous) + 1 if str(previous).isdigit() else 1
            attributes[REDRIVE_COUNT_ATTRIBUTE] = {"DataType": "Number", "StringValue": str(count)}
            entries.append({"Id": str(i), "MessageBody": message["Body"], "MessageAttributes": attributes})
        sent = sqs.send_message_batch(QueueUrl=source, Entries=entries)
        for failure in sent.get("Failed", []):
            log.error("redrive %s: message %s could not be sent back (%s); it stays in the DLQ", target.name,
                      batch[int(failure["Id"])]["MessageId"], failure.get("Code"))
        moved = sent.get("Successful", [])
        if not moved:
            break  # nothing could be sent: stop rather than spin; the messages reappear in the DLQ
        sqs.delete_message_batch(
            QueueUrl=dead,
            Entries=[{"Id": s["Id"], "ReceiptHandle": batch[int(s["Id"])]["ReceiptHandle"]} for s in moved],
        )
        result.moved += len(moved)
        result.message_ids.extend(s["MessageId"] for s in moved)
    log.info("redrive %s: moved %d messages back to its queue", target.name, result.moved)
    if handler is not None and result.moved:
        result.batches = drain(backend, target.name, handler)
    return result
