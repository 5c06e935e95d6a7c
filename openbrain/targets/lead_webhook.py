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
already lists (a redelivery after success), and a Lead or Client that no longer exists (deleted data
cannot be delivered however often we retry; it is logged at WARNING). See docs/targets.md.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from openbrain.aws.backend import get_backend
from openbrain.aws.secrets import SecretResolver, resolver_for
from openbrain.core.clock import utcnow
from openbrain.core.errors import ConfigurationError, ConflictError, NotFoundError, OpenBrainError, UpstreamError
from openbrain.domain.events import LeadCaptured, LeadDelivered, LeadUpdated
from openbrain.domain.urls import webhook_host
from openbrain.storage.orm.lead import MAX_DELIVERED_KEYS
from openbrain.targets.http import post_json
from openbrain.targets.records import MalformedRecordError, parse_body
from openbrain.targets.signing import signed_headers

if TYPE_CHECKING:
    from openbrain.aws.backend import Backend
    from openbrain.storage.orm import Lead

TARGET_NAME = "lead-webhook"
DELIVERED = "delivered"
USER_AGENT = "OpenBrain-Webhook/1"
_MARK_ATTEMPTS = 3

log = logging.getLogger(__name__)

Poster = Callable[[str, bytes, dict[str, str], float], int]


class WebhookRejectedError(UpstreamError):
    """The webhook answered with something other than 2xx."""

    code = "webhook_rejected"

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Outcome:
    """What became of one record that did not fail."""

    status: Literal["delivered", "duplicate", "skipped"]
    event_id: str
    lead_id: str | None = None
    reason: str = ""


class LeadWebhook:
    """Delivers lead events through one backend. `post` is the HTTP call (injectable for other transports)."""

    def __init__(
        self,
        backend: Backend,
        *,
        secrets: SecretResolver | None = None,
        post: Poster = post_json,
        timeout: float | None = None,
    ) -> None:
        self.backend = backend
        self.secrets = secrets or resolver_for(backend)
        self.post = post
        self.timeout = timeout if timeout is not None else backend.settings.webhook_timeout_seconds

    def handle_body(self, body: str) -> Outcome:
        """Handle one SQS message body. Returns how it was acknowledged; raises (an `OpenBrainError`) when the
        record must fail and be retried."""
        try:
            record = parse_body(body)
        except MalformedRecordError as exc:
            log.warning("lead-webhook: malformed record: %s", exc.message)
            raise
        event = record.event
        if not isinstance(event, LeadCaptured | LeadUpdated):
            error = MalformedRecordError(f"{event.detail_type} is not an event the lead-webhook target handles")
            log.warning("lead-webhook: %s (event %s)", error.message, event.event_id)
            raise error
        try:
            outcome = self.deliver(event)
        except OpenBrainError as exc:
            log.warning("lead-webhook: %s %s for client %s lead %s failed: %s", event.detail_type, event.event_id,
                        event.client_id, event.lead_id, exc.message)
            raise
        level = logging.WARNING if outcome.status == "skipped" else logging.INFO
        log.log(level, "lead-webhook: %s %s for client %s lead %s: %s%s", event.detail_type, event.event_id,
                event.client_id, event.lead_id, outcome.status, f" ({outcome.reason})" if outcome.reason else "")
        return outcome

    def deliver(self, event: LeadCaptured | LeadUpdated) -> Outcome:
        """Post `event`'s lead to its client's webhook once (see the module docstring for every path)."""
        stores = self.backend.stores
        try:
            lead = stores.leads.get(event.client_id, event.lead_id)
        except NotFoundError:
            return Outcome("skipped", event.event_id, event.lead_id, "the lead no longer exists")
        if event.idempotency_key in (lead.delivered_keys or []):
            return Outcome("duplicate", event.event_id, lead.lead_id, "already delivered")
        try:
            client = stores.clients.get(event.client_id)
        except NotFoundError:
            return Outcome("skipped", event.event_id, lead.lead_id, "the client no longer exists")
        if not client.webhook_url:
            raise ConfigurationError(f"client {client.client_id} has no webhook URL")
        if not client.webhook_secret_ref:
            raise ConfigurationError(f"client {client.client_id} has no webhook signing secret reference")
        secret = self.secrets.resolve(client.webhook_secret_ref)

        body = self.body(event, lead, self._profile_name(event))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-OpenBrain-Event": event.detail_type,
            **signed_headers(secret, event.idempotency_key, body),
        }
        status = self.post(client.webhook_url, body, headers, self.timeout)
        if not 200 <= status < 300:
            if status in (401, 403):  # perhaps the secret was rotated: read it again on the retry
                self.secrets.invalidate(client.webhook_secret_ref)
            raise WebhookRejectedError(
                f"the webhook at {webhook_host(client.webhook_url)} answered HTTP {status}", status
            )
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

    def _profile_name(self, event: LeadCaptured | LeadUpdated) -> str | None:
        """The session's profile; `None` when the session has expired or is gone (the lead still goes out)."""
        try:
            session = self.backend.stores.sessions.get(event.client_id, event.session_id)
        except NotFoundError:
            return None
        snapshot = session.config_snapshot if isinstance(session.config_snapshot, dict) else {}
        return session.profile_name or snapshot.get("profile_name")

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
    """The target's Lambda handler: an SQS batch in, `{"batchItemFailures": [...]}` out.

    A record whose delivery raises is reported as a batch item failure, so SQS retries only it and,
    after the queue's maxReceiveCount, moves it to the dead-letter queue. `ob-serve` calls this same
    function with batches it polls.
    """
    from aws_lambda_powertools.utilities.batch import process_partial_response

    target = LeadWebhook(get_backend())

    def record_handler(record: SQSRecord) -> Outcome:
        return target.handle_body(record.body)

    return dict(process_partial_response(event=event, record_handler=record_handler, processor=_processor(),
                                         context=context))


def _processor() -> BatchProcessor:
    # A batch whose every record failed is still answered with batchItemFailures (not an exception), so
    # local pollers and tests see the same shape; for Lambda both mean "retry all of them".
    return BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)

