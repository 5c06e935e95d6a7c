"""The AWS resources OpenBrain needs, defined once.

The embedded backend creates them from these definitions; `template.yaml` declares the same ones for a
deployment (a test keeps the two in step). Everything here is idempotent: creating what exists is a no-op.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from openbrain.events import EVENT_SOURCE, LeadCaptured, LeadUpdated
from openbrain.orm import MODELS, ChatSession

if TYPE_CHECKING:
    from openbrain.settings import Settings

SESSION_TTL_ATTRIBUTE = "expires_at"
# SQS keeps a dead-lettered message's original enqueue time, so a DLQ needs a longer retention than its
# source queue (4 days by default) or messages expire there soon after arriving: keep them the maximum.
DLQ_RETENTION_SECONDS = 14 * 24 * 3600


@dataclass(frozen=True)
class QueueTarget:
    """An event rule that feeds one target's SQS queue, with that queue's dead-letter queue."""

    name: str
    detail_types: tuple[str, ...]
    handler: str  # "module:function" of the handler the target's queue feeds (Lambda, or ob-serve's poller)
    max_receive_count: int = 5
    visibility_timeout: int = 60

    def event_pattern(self) -> dict[str, Any]:
        return {"source": [EVENT_SOURCE], "detail-type": list(self.detail_types)}

    def rule_name(self, settings: Settings) -> str:
        return f"{settings.queue_prefix}-{self.name}"

    def queue_name(self, settings: Settings) -> str:
        return f"{settings.queue_prefix}-{self.name}"

    def dlq_name(self, settings: Settings) -> str:
        return f"{settings.queue_prefix}-{self.name}-dlq"


TARGETS: tuple[QueueTarget, ...] = (
    QueueTarget("lead-webhook", (LeadCaptured.detail_type, LeadUpdated.detail_type),
                "openbrain.targets.lead_webhook:handler"),
)


def create_tables() -> None:
    """Create every model's table (PAY_PER_REQUEST) where missing; turn on TTL for sessions."""
    for model in MODELS:
        if not model.exists():
            model.create_table(billing_mode="PAY_PER_REQUEST", wait=True)
    client = ChatSession._get_connection().connection.client
    ttl = client.describe_time_to_live(TableName=ChatSession.Meta.table_name)["TimeToLiveDescription"]
    if ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):  # DynamoDB refuses enabling it twice
        client.update_time_to_live(
            TableName=ChatSession.Meta.table_name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": SESSION_TTL_ATTRIBUTE},
        )


def create_event_resources(events: Any, sqs: Any, settings: Settings) -> dict[str, str]:
    """Create the bus, each target's queue + DLQ and the rule feeding it. Returns queue name -> URL."""
    bus = settings.event_bus_name
    if bus != "default":
        try:
            events.describe_event_bus(Name=bus)
        except events.exceptions.ResourceNotFoundException:
            events.create_event_bus(Name=bus)
    urls: dict[str, str] = {}
    for target in TARGETS:
        dlq_url = sqs.create_queue(
            QueueName=target.dlq_name(settings),
            Attributes={"MessageRetentionPeriod": str(DLQ_RETENTION_SECONDS)},
        )["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        queue_url = sqs.create_queue(
            QueueName=target.queue_name(settings),
            Attributes={
                "VisibilityTimeout": str(target.visibility_timeout),
                "RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(target.max_receive_count)}
                ),
            },
        )["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        events.put_rule(
            Name=target.rule_name(settings),
            EventBusName=bus,
            EventPattern=json.dumps(target.event_pattern()),
            State="ENABLED",
        )
        events.put_targets(
            Rule=target.rule_name(settings),
            EventBusName=bus,
            Targets=[{"Id": target.name, "Arn": queue_arn}],
        )
        urls[target.queue_name(settings)] = queue_url
        urls[target.dlq_name(settings)] = dlq_url
    return urls
