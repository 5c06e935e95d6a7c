"""Lambda handler of the `lead-webhook` target: an SQS batch in, `{"batchItemFailures": [...]}` out.

Thin on purpose: the delivery (load, sign, post, mark, publish) is `openbrain.targets.lead_webhook`. Each
record is one EventBridge envelope; a record whose delivery raises is reported as a batch item failure,
so SQS retries only it and, after the queue's maxReceiveCount, moves it to the dead-letter queue.
Imports no langchain (tests/targets/test_lambda_imports.py).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from openbrain.backend import get_backend
from openbrain.targets.lead_webhook import LeadWebhook, Outcome

# A batch whose every record failed is still answered with batchItemFailures (not an exception), so
# local pollers and tests see the same shape; for Lambda both mean "retry all of them".
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    target = LeadWebhook(get_backend())

    def record_handler(record: SQSRecord) -> Outcome:
        return target.handle_body(record.body)

    return dict(process_partial_response(event=event, record_handler=record_handler, processor=processor,
                                         context=context))
