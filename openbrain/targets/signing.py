"""Webhook signatures per the Standard Webhooks specification (https://www.standardwebhooks.com), by its
reference library: `webhook-id` (the event's idempotency key, the same on every retry), `webhook-timestamp`
(seconds since the epoch at the attempt) and `webhook-signature: v1,<base64 HMAC-SHA256 of
"<id>.<timestamp>.<body>">` keyed by the client's secret (`whsec_` + base64). Any Standard Webhooks receiver
(the `standardwebhooks` and `svix` libraries, ...) verifies a delivery, and refuses one older than 5 minutes."""

from __future__ import annotations

from datetime import datetime

from standardwebhooks import Webhook

from openbrain.core.clock import utcnow


def signed_headers(secret: str, message_id: str, body: bytes, at: datetime | None = None) -> dict[str, str]:
    """The three Standard Webhooks headers for posting `body` as message `message_id` now (or `at`)."""
    timestamp = at or utcnow()
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": Webhook(secret).sign(message_id, timestamp, body),
    }
