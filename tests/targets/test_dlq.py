"""Dead-lettered target messages (openbrain/targets/dlq.py): a failing webhook exhausts the retries, the message
sits in the lead-webhook DLQ with its original body, `list_dead_letters` shows it without consuming it,
and once the webhook is fixed `redrive` delivers it exactly once. All in-process: moto SQS really moves
the message to the DLQ after the queue's maxReceiveCount receives (its RedrivePolicy)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from support.targets import (
    WebhookServer,
    captured,
    catch_events,
    drain_bodies,
    fail_until_dead_lettered,
    make_lead,
    queue_depth,
    queue_url,
    run_target,
)

from openbrain.aws.backend import Backend
from openbrain.aws.resources import TARGETS
from openbrain.core.errors import NotFoundError
from openbrain.storage.orm import Client, Lead
from openbrain.targets.dlq import list_dead_letters, redrive

pytestmark = pytest.mark.integration
MAX_RECEIVES = TARGETS[0].max_receive_count


def test_a_failing_webhook_dead_letters_then_redrive_delivers_exactly_once(
    backend: Backend, webhook: WebhookServer, client: Client, handler: Any
) -> None:
    # given: the client's webhook is down when a lead is captured
    delivered_queue = catch_events(backend, "lead.delivered.v1")
    webhook.status = 500
    lead = make_lead()
    event = captured(lead)
    backend.events.publish([event])

    # when: the target is retried until SQS gives up
    attempts = fail_until_dead_lettered(backend, handler)

    # then: it was tried maxReceiveCount times and now sits in the DLQ with its original body
    assert attempts == MAX_RECEIVES
    assert len(webhook.requests) == MAX_RECEIVES
    assert queue_depth(backend, queue_url(backend)) == 0
    assert queue_depth(backend, queue_url(backend, dlq=True)) == 1
    assert Lead.get("acme", lead.lead_id).status == "new"

    # ... list_dead_letters shows it, twice in a row: listing neither deletes nor hides it
    for _ in range(2):
        [dead] = list_dead_letters(backend, "lead-webhook")
        assert dead.event_type == "lead.captured.v1"
        assert dead.event_id == event.event_id
        assert dead.idempotency_key == event.idempotency_key
        assert dead.client_id == "acme"
        assert dead.receive_count >= MAX_RECEIVES
        assert dead.first_failure_at is not None and dead.sent_at is not None
        assert dead.error is None and dead.redrive_count == 0
    raw = backend.client("sqs").receive_message(QueueUrl=queue_url(backend, dlq=True), VisibilityTimeout=0)
    [message] = raw["Messages"]
    assert json.loads(message["Body"])["detail"] == event.detail()

    # when: the webhook is fixed and the DLQ redriven through the target's handler
    webhook.status = 200
    result = redrive(backend, "lead-webhook", handler=handler)

    # then: delivered exactly once
    assert (result.moved, result.processed, result.failed) == (1, 1, 0)
    assert len(webhook.requests) == MAX_RECEIVES + 1
    assert len({r.headers["webhook-id"] for r in webhook.requests}) == 1
    stored = Lead.get("acme", lead.lead_id)
    assert stored.status == "delivered" and stored.delivered_keys == [event.idempotency_key]
    assert [b["detail"]["delivered_event_id"] for b in drain_bodies(backend, delivered_queue)] == [event.event_id]
    assert list_dead_letters(backend, "lead-webhook") == []
    assert queue_depth(backend, queue_url(backend)) == 0

    # ... and a second redrive has nothing to do
    again = redrive(backend, "lead-webhook", handler=handler)
    assert (again.moved, again.processed) == (0, 0)
    assert len(webhook.requests) == MAX_RECEIVES + 1


def test_a_redriven_message_gets_every_retry_again_and_counts_its_redrives(
    backend: Backend, webhook: WebhookServer, client: Client, handler: Any
) -> None:
    webhook.status = 502
    backend.events.publish([captured(make_lead())])
    fail_until_dead_lettered(backend, handler)

    # when: redriven without a handler while the webhook is still down
    result = redrive(backend, "lead_webhook")

    # then: it is back on the target's queue, tried maxReceiveCount times more, and dead-lettered again
    assert (result.moved, result.processed) == (1, 0)
    assert queue_depth(backend, queue_url(backend)) == 1
    assert list_dead_letters(backend, "lead-webhook") == []
    assert fail_until_dead_lettered(backend, handler) == MAX_RECEIVES
    [dead] = list_dead_letters(backend, "lead-webhook")
    assert dead.redrive_count == 1
    assert len(webhook.requests) == 2 * MAX_RECEIVES


def test_redriving_an_event_delivered_meanwhile_does_not_post_again(
    backend: Backend, webhook: WebhookServer, client: Client, handler: Any
) -> None:
    # given: a dead-lettered event whose twin (same idempotency key) was delivered later
    webhook.status = 500
    lead = make_lead()
    backend.events.publish([captured(lead)])
    fail_until_dead_lettered(backend, handler)
    webhook.status = 200
    backend.events.publish([captured(lead)])
    assert run_target(backend, handler).failed == []
    posts = len(webhook.requests)

    # when
    result = redrive(backend, "lead-webhook", handler=handler)

    # then: acknowledged as a duplicate
    assert (result.moved, result.processed, result.failed) == (1, 1, 0)
    assert len(webhook.requests) == posts
    assert list_dead_letters(backend, "lead-webhook") == []


def test_an_unreadable_dead_letter_is_listed_with_its_error(backend: Backend) -> None:
    backend.client("sqs").send_message(QueueUrl=queue_url(backend, dlq=True), MessageBody="{oops")

    [dead] = list_dead_letters(backend, "lead-webhook")

    assert dead.event_type is None and dead.client_id is None
    assert dead.error == "the message body is not JSON"
    assert dead.as_dict()["message_id"] == dead.message_id


def test_many_dead_letters_are_all_listed(backend: Backend) -> None:
    sqs = backend.client("sqs")
    for i in range(23):
        sqs.send_message(QueueUrl=queue_url(backend, dlq=True), MessageBody=json.dumps({"n": i}))

    assert len(list_dead_letters(backend, "lead-webhook")) == 23
    assert len(list_dead_letters(backend, "lead-webhook", limit=5)) == 5
    assert queue_depth(backend, queue_url(backend, dlq=True)) == 23


def test_an_unknown_target_is_not_found(backend: Backend) -> None:
    with pytest.raises(NotFoundError, match="lead-webhook"):
        list_dead_letters(backend, "crm-sync")
    with pytest.raises(NotFoundError):
        redrive(backend, "crm-sync")
