"""Hand a target queue's messages to a target handler the way Lambda's SQS event source does.

Lambda is the poller in a deployment. On one machine (`ob-serve`, `ob-admin dlq redrive`, tests) this
module does the same: receive a batch, give it to `handler(event, context)` in Lambda's SQS event shape,
delete what succeeded, and leave each item in `batchItemFailures` (or the whole batch, if the handler
raised) on the queue, so SQS receives it again and, after `maxReceiveCount`, moves it to the DLQ.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from openbrain.core.ids import new_id
from openbrain.targets.queues import source_queue_url, target_named

if TYPE_CHECKING:
    from openbrain.aws.backend import Backend

Handler = Callable[[dict[str, Any], Any], Any]
log = logging.getLogger(__name__)


@dataclass
class LocalContext:
    """The parts of Lambda's context object a handler may read."""

    function_name: str
    aws_request_id: str = field(default_factory=new_id)
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = ""
    timeout_ms: int = 60_000

    def get_remaining_time_in_millis(self) -> int:
        return self.timeout_ms


@dataclass(frozen=True)
class PollResult:
    received: list[str]
    failed: list[str]


def sqs_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """Lambda's SQS event for messages as `ReceiveMessage` returned them (with `AttributeNames=["All"]`)."""
    records = []
    for message in messages:
        attributes = {k: str(v) for k, v in message.get("Attributes", {}).items()}
        records.append({
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": attributes,
            "messageAttributes": {
                name: {
                    "stringValue": value.get("StringValue"),
                    "binaryValue": value.get("BinaryValue"),
                    "stringListValues": [],
                    "binaryListValues": [],
                    "dataType": value.get("DataType", "String"),
                }
                for name, value in message.get("MessageAttributes", {}).items()
            },
            "md5OfBody": message.get("MD5OfBody") or hashlib.md5(message["Body"].encode()).hexdigest(),  # noqa: S324
            "eventSource": "aws:sqs",
            "eventSourceARN": queue_arn,
            "awsRegion": region,
        })
    return {"Records": records}


def poll_once(
    backend: Backend,
    target_name: str,
    handler: Handler,
    *,
    max_messages: int = 10,
    visibility_timeout: int | None = None,
    wait_seconds: int = 0,
) -> PollResult:
    """Receive up to `max_messages` from the target's queue, run `handler` on them, delete the successes.
    `visibility_timeout` (default: the queue's) is how long a failed message stays hidden before SQS
    offers it again; tests pass 0 to retry at once."""
    target = target_named(target_name)
    sqs = backend.client("sqs")
    url = source_queue_url(backend, target)
    kwargs: dict[str, Any] = {"QueueUrl": url, "MaxNumberOfMessages": max_messages, "WaitTimeSeconds": wait_seconds,
                              "AttributeNames": ["All"], "MessageAttributeNames": ["All"]}
    if visibility_timeout is not None:
        kwargs["VisibilityTimeout"] = visibility_timeout
    messages = sqs.receive_message(**kwargs).get("Messages", [])
    if not messages:
        return PollResult([], [])
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    event = sqs_event(messages, arn, backend.settings.region)
    received = [m["MessageId"] for m in messages]
    try:
        response = handler(event, LocalContext(function_name=target.name))
        failed = [str(item["itemIdentifier"]) for item in (response or {}).get("batchItemFailures", [])]
    except Exception:
        log.exception("target %s: the handler raised; the whole batch of %d will be retried", target.name,
                      len(messages))
        failed = list(received)
    done = [m for m in messages if m["MessageId"] not in set(failed)]
    for start in range(0, len(done), 10):
        chunk = done[start:start + 10]
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
        )
    return PollResult(received, failed)


def drain(backend: Backend, target_name: str, handler: Handler, *, max_batches: int = 100) -> list[PollResult]:
    """Poll until the queue has nothing visible (failed messages stay hidden for the queue's visibility
    timeout, so each message is tried at most once per drain)."""
    results = []
    for _ in range(max_batches):
        result = poll_once(backend, target_name, handler)
        if not result.received:
            break
        results.append(result)
    return results
