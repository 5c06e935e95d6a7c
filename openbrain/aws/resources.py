"""The AWS resources OpenBrain needs, defined once.

The embedded backend creates them from these definitions; `template.yaml` declares the same ones for a
deployment (a test keeps the two in step). Everything here is idempotent: creating what exists is a no-op.
"""

from __future__ import annotations

import importlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from openbrain.core.errors import ConfigurationError, UpstreamError
from openbrain.domain.events import EVENT_SOURCE, LeadCaptured, LeadUpdated, MessageDelivered, MessageScheduled
from openbrain.storage.orm import MODELS, ChatSession, Connection, RateCounter

if TYPE_CHECKING:
    from openbrain.aws.backend import Backend
    from openbrain.core.settings import Settings

log = logging.getLogger(__name__)
SESSION_TTL_ATTRIBUTE = "expires_at"  # ChatSession's and Connection's
IDEMPOTENCY_TTL_ATTRIBUTE = "expiration"  # Powertools idempotency's expiry attribute
LIMITS_TTL_ATTRIBUTE = "expires_at"  # RateCounter: a window's counter outlives it by an hour
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

    def load_handler(self) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
        """The handler function itself (imported on first use: the resources never import a target)."""
        module, _, function = self.handler.partition(":")
        return getattr(importlib.import_module(module), function)  # type: ignore[no-any-return]

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
    QueueTarget("message-webhook", (MessageScheduled.detail_type, MessageDelivered.detail_type),
                "openbrain.targets.message_webhook:handler"),
)


def create_tables(settings: Settings) -> bool:
    """Create every model's table and the idempotency table (PAY_PER_REQUEST) where missing (and an index a
    model declares that its existing table lacks: `add_missing_indexes`); turn on TTL
    for sessions, WebSocket connections, rate-limit counters and idempotency records. Returns whether TTL is
    on: False where the endpoint does not implement DynamoDB's TTL API (dynalite), which is no error: reads
    ignore expired items themselves (a counter's window is never read once it ends), they are only never
    deleted."""
    client = ChatSession._get_connection().connection.client
    for model in MODELS:
        if not model.exists():  # TTL is turned on below, where an endpoint without it is no error
            model.create_table(billing_mode="PAY_PER_REQUEST", wait=True, ignore_update_ttl_errors=True)
        else:
            add_missing_indexes(client, model)
    name = settings.idempotency_table
    if not table_exists(client, name):
        # Powertools' DynamoDBPersistenceLayer schema: hash key `id` (services/idempotency.py)
        client.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}])
        client.get_waiter("table_exists").wait(TableName=name)
    try:
        for table, attribute in ((ChatSession.Meta.table_name, SESSION_TTL_ATTRIBUTE),
                                 (Connection.Meta.table_name, SESSION_TTL_ATTRIBUTE),
                                 (RateCounter.Meta.table_name, LIMITS_TTL_ATTRIBUTE),
                                 (name, IDEMPOTENCY_TTL_ATTRIBUTE)):
            ttl = client.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
            if ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):  # DynamoDB refuses enabling it twice
                client.update_time_to_live(TableName=table,
                                           TimeToLiveSpecification={"Enabled": True, "AttributeName": attribute})
    except client.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "UnknownOperationException":
            raise
        log.info("%s does not implement DynamoDB's TTL API (%s): expired items are never deleted",
                    client.meta.endpoint_url, exc.operation_name)
        return False
    return True


def add_missing_indexes(client: Any, model: Any) -> None:
    """Add the global secondary indexes `model` declares that its table, made before them, lacks (DynamoDB
    fills a new index in the background; a query of it meanwhile misses items)."""
    wanted = model._get_schema()["global_secondary_indexes"]
    if not wanted:
        return
    table = client.describe_table(TableName=model.Meta.table_name)["Table"]
    present = {index["IndexName"] for index in table.get("GlobalSecondaryIndexes", [])}
    for index in wanted:
        if index["index_name"] in present:
            continue
        log.info("adding the index %s to %s", index["index_name"], model.Meta.table_name)
        client.update_table(TableName=model.Meta.table_name, AttributeDefinitions=index["attribute_definitions"],
                            GlobalSecondaryIndexUpdates=[{"Create": {"IndexName": index["index_name"],
                                                                     "KeySchema": index["key_schema"],
                                                                     "Projection": index["projection"]}}])


def table_exists(client: Any, name: str) -> bool:
    try:
        client.describe_table(TableName=name)
    except client.exceptions.ResourceNotFoundException:
        return False
    return True


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


@dataclass
class InitReport:
    """What `init_resources` found and did."""

    backend: str
    endpoint: str | None
    tables: dict[str, str] = field(default_factory=dict)  # table name -> "created" | "exists"
    event_bus: str = ""
    queues: dict[str, str] = field(default_factory=dict)  # queue name -> URL
    ttl: bool = True  # TTL is on for the tables that expire items (False: the endpoint has no TTL API)
    message: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "endpoint": self.endpoint,
            "tables": self.tables,
            "event_bus": self.event_bus,
            "queues": self.queues,
            "ttl": "enabled" if self.ttl else "unsupported",
            "message": self.message,
        }


def _table_names(settings: Settings) -> list[str]:
    return [*settings.table_names().values(), settings.idempotency_table]


def init_resources(backend: Backend) -> InitReport:
    """Create the tables, event bus, rules and queues of `openbrain.aws.resources` where they are missing.

    For `aws` (real AWS or an `AWS_ENDPOINT_URL` endpoint); idempotent. The memory backend creates
    them itself whenever it starts, so for it this only reports what exists.
    """
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
    from pynamodb.exceptions import PynamoDBException

    settings = backend.settings
    report = InitReport(
        backend=backend.kind,
        endpoint=backend.client("dynamodb").meta.endpoint_url,
        event_bus=settings.event_bus_name,
    )
    if backend.kind == "memory":
        report.tables = {name: "exists" for name in _table_names(settings)}
        report.queues = dict(backend.queue_urls)
        report.endpoint = None
        report.message = (
            "the embedded (memory) backend creates its tables, bus, rules and queues itself whenever it "
            "starts; nothing to do. To prepare a shared endpoint set OB_BACKEND=aws and AWS_ENDPOINT_URL."
        )
        return report
    where = report.endpoint or "AWS"
    try:
        client = backend.client("dynamodb")
        existed = {name: table_exists(client, name) for name in _table_names(settings)}
        report.ttl = create_tables(settings)
        report.tables = {name: "exists" if before else "created" for name, before in existed.items()}
        report.queues = create_event_resources(backend.client("events"), backend.client("sqs"), settings)
    except (BotoCoreError, ClientError, PynamoDBException) as exc:
        cause: BaseException = exc
        if isinstance(exc, PynamoDBException) and isinstance(exc.cause, BaseException):
            cause = exc.cause  # PynamoDB wraps botocore's error
        if isinstance(cause, NoCredentialsError):
            raise ConfigurationError(
                f"no AWS credentials for {where}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                "(any values do for a local endpoint)"
            ) from exc
        detail = " ".join(str(cause).split())
        raise UpstreamError(f"could not create the OpenBrain resources on {where}: {detail}") from exc
    created = [name for name, state in report.tables.items() if state == "created"]
    report.message = (
        f"created {len(created)} of {len(report.tables)} tables; bus {settings.event_bus_name}, "
        f"{len(report.queues)} queues and their rules are in place on {where}"
    )
    log.info("init on %s: %s", where, report.message)
    return report
