"""The `lead-webhook` target: POST a captured or updated lead to its client's webhook, signed, once.

For each `lead.captured.v1` / `lead.updated.v1` event it loads the Lead, the Client and the session's
profile name, and POSTs

    {"event": {"type", "event_id", "idempotency_key"}, "lead": Lead.to_public_dict(),
     "profile_name": ..., "session_id": ...}

to `Client.webhook_url` signed per Standard Webhooks (`webhook-id` = the event's idempotency key,
`webhook-timestamp`, `webhook-signature`; the secret named by `Client.webhook_secret_ref`: signing.py), with
`X-OpenBrain-Event`. A 2xx marks the lead
delivered (status, `delivered_at`, the event's key in `delivered_keys`) and publishes `lead.delivered.v1`.

What fails the record (SQS retries it, then dead-letters it with its original body): a non-2xx answer,
a timeout or network error, a client without a webhook URL or secret reference, an unreadable secret,
a malformed message. What is acknowledged without posting: an event whose idempotency key the lead
already lists (a redelivery after success), a Lead or Client that no longer exists (deleted data
cannot be delivered however often we retry; it is logged at WARNING), and a lead of the CLIs' own client
`public` while it has no record (INFO: nothing asked for it). See docs/targets.md.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any, ClassVar

from openbrain.aws.backend import get_backend
from openbrain.core.clock import utcnow
from openbrain.core.errors import ConflictError, NotFoundError, UpstreamError
from openbrain.domain.events import Event, LeadCaptured, LeadDelivered, LeadUpdated
from openbrain.storage.orm.lead import MAX_DELIVERED_KEYS
from openbrain.targets.webhook import Outcome, WebhookTarget, batch_handler

if TYPE_CHECKING:
    from openbrain.storage.orm import Lead

TARGET_NAME = "lead-webhook"
DELIVERED = "delivered"
_MARK_ATTEMPTS = 3

log = logging.getLogger(__name__)


class LeadWebhook(WebhookTarget):
    """Delivers lead events through one backend (the shared parts: targets/webhook.py)."""

    name: ClassVar[str] = TARGET_NAME
    handles: ClassVar[tuple[type[Event], ...]] = (LeadCaptured, LeadUpdated)
    object_kind: ClassVar[str] = "lead"

    def deliver(self, event: LeadCaptured | LeadUpdated) -> Outcome:
        """Post `event`'s lead to its client's webhook once (see the module docstring for every path)."""
        stores = self.backend.stores
        try:
            lead = stores.leads.get(event.client_id, event.lead_id)
        except NotFoundError:
            return Outcome("skipped", event.event_id, event.lead_id, "the lead no longer exists")
        if event.idempotency_key in (lead.delivered_keys or []):
            return Outcome("duplicate", event.event_id, lead.lead_id, "already delivered")
        client = self.client_of(event)
        if client is None:
            return self.without_client(event, lead.lead_id)
        # the session's profile; None when the session has expired or is gone (the lead still goes out)
        self.post(client, event, self.body(event, lead, self.profile_name(self.session_of(event))))
        self._mark_delivered(lead, event.idempotency_key)
        self._publish_delivered(event)
        return Outcome("delivered", event.event_id, lead.lead_id)

    @staticmethod
    def body(event: LeadCaptured | LeadUpdated, lead: Lead, profile_name: str | None) -> bytes:
        """The exact bytes posted (and signed)."""
        payload = {
            "event": {"type": event.detail_type, "event_id": event.event_id, "idempotency_key": event.idempotency_key},
            "lead": lead.to_public_dict(),
            "profile_name": profile_name,
            "session_id": event.session_id,
        }
        return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()

    def _mark_delivered(self, lead: Lead, key: str) -> None:
        """Record the delivery on the lead; a concurrent change of the lead (a chat turn updating it) is
        re-read and the mark applied again, never overwritten."""
        for attempt in range(_MARK_ATTEMPTS):
            keys = [k for k in (lead.delivered_keys or []) if k != key]
            lead.delivered_keys = [*keys, key][-MAX_DELIVERED_KEYS:]  # type: ignore[assignment]
            lead.status = DELIVERED
            lead.delivered_at = utcnow()
            try:
                self.backend.stores.leads.save(lead)
                return
            except ConflictError:
                if attempt == _MARK_ATTEMPTS - 1:
                    raise
                lead = self.backend.stores.leads.get(lead.client_id, lead.lead_id)

    def _publish_delivered(self, event: LeadCaptured | LeadUpdated) -> None:
        delivered = LeadDelivered(
            client_id=event.client_id,
            session_id=event.session_id,
            tool_call_id=event.tool_call_id,
            lead_id=event.lead_id,
            target=TARGET_NAME,
            delivered_event_type=event.detail_type,
            delivered_event_id=event.event_id,
            delivered_idempotency_key=event.idempotency_key,
        )
        try:
            self.backend.events.publish([delivered])
        except UpstreamError as exc:
            # The webhook has the lead and the lead says so; failing the record now would only make the
            # redelivery a duplicate. The missing notification is logged for an operator instead.
            log.error("lead-webhook: lead %s delivered but lead.delivered.v1 was not published: %s",
                      event.lead_id, exc.message)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The target's Lambda handler: an SQS batch in, `{"batchItemFailures": [...]}` out (targets/webhook.py).
    `ob-serve` calls this same function with batches it polls."""
    return batch_handler(LeadWebhook(get_backend()), event, context)
