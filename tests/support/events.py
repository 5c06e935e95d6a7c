"""Reading what EventBridge delivered to a target's SQS queue (the embedded bus's rules deliver at once)."""

from __future__ import annotations

import json
from typing import Any

from openbrain.aws.backend import Backend

WEBHOOK_QUEUE = "openbrain-lead-webhook"


def delivered(backend: Backend, queue: str = WEBHOOK_QUEUE) -> list[dict[str, Any]]:
    """Every event waiting in `queue`, oldest first, removed from it (each SQS receive returns at most 10)."""
    sqs, url = backend.client("sqs"), backend.queue_urls[queue]
    events: list[dict[str, Any]] = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages"):
        for message in messages:
            events.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return events
