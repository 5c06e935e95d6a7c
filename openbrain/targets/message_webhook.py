"""The `message-webhook` target: POST scheduled messages' events to their client's webhook, signed.

For each `message.scheduled.v1` / `message.delivered.v1` event it loads the Client and the session, and POSTs

    {"event": {"type", "event_id", "idempotency_key"}, "message": {the event's own fields},
     "session_id": ..., "profile_name": ..., "end_user_id": ..., "lead_id": ...}

to `Client.webhook_url`, signed as `lead-webhook` posts (targets/webhook.py: Standard Webhooks, `webhook-id` = the
event's idempotency key, `X-OpenBrain-Event`). `message` of a delivered message carries its `text`, so the client
can send it on by e-mail or SMS to the session's end user (`end_user_id`) or lead (`lead_id`); the session's
fields are `null` when it has expired or is gone.

What fails the record (SQS retries it, then dead-letters it): a non-2xx answer, a timeout or network error, a
webhook URL without a secret reference, an unreadable secret, a malformed message. What is acknowledged without
posting: a Client that no longer exists (WARNING), and a client without a webhook URL or, the CLIs' own `public`,
without a record (INFO: it has not asked for its messages). Nothing is recorded after a POST: a redelivered event
is posted again with the same `webhook-id`, which Standard Webhooks receivers use to ignore a repeat. See
docs/targets.md.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from openbrain.aws.backend import get_backend
from openbrain.domain.events import Event, MessageDelivered, MessageScheduled
from openbrain.targets.webhook import Outcome, WebhookTarget, batch_handler

TARGET_NAME = "message-webhook"
_COMMON = frozenset(Event.model_fields)  # event_id, occurred_at, client_id, session_id, tool_call_id, idempotency_key


class MessageWebhook(WebhookTarget):
    """Delivers scheduled messages' events through one backend."""

    name: ClassVar[str] = TARGET_NAME
    handles: ClassVar[tuple[type[Event], ...]] = (MessageScheduled, MessageDelivered)
    object_kind: ClassVar[str] = "schedule"

    def deliver(self, event: MessageScheduled | MessageDelivered) -> Outcome:
        """Post `event` to its client's webhook (see the module docstring for every path)."""
        client = self.client_of(event)
        if client is None:
            return self.without_client(event, event.schedule_id)
        if not client.webhook_url:
            return Outcome("ignored", event.event_id, event.schedule_id, "the client has no webhook URL")
        self.post(client, event, self.body(event, self.session_fields(event)))
        return Outcome("delivered", event.event_id, event.schedule_id)

    def session_fields(self, event: Event) -> dict[str, Any]:
        session = self.session_of(event)
        return {
            "session_id": event.session_id,
            "profile_name": self.profile_name(session),
            "end_user_id": session.end_user_id if session else None,
            "lead_id": session.lead_id if session else None,
        }

    @staticmethod
    def body(event: MessageScheduled | MessageDelivered, session: dict[str, Any]) -> bytes:
        """The exact bytes posted (and signed)."""
        detail = event.detail()
        payload = {
            "event": {"type": event.detail_type, "event_id": event.event_id, "idempotency_key": event.idempotency_key},
            "message": {key: value for key, value in detail.items() if key not in _COMMON},
            **session,
        }
        return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The target's Lambda handler: an SQS batch in, `{"batchItemFailures": [...]}` out (targets/webhook.py).
    `ob-serve` calls this same function with batches it polls."""
    return batch_handler(MessageWebhook(get_backend()), event, context)
