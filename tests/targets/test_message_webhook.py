"""The message-webhook target, in-process: real loopback webhook, moto SSM/DynamoDB/EventBridge/SQS, and the
Lambda handler (loaded from its app.py as Lambda does) fed batches received from the target's real queue."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import pytest
from standardwebhooks import WebhookVerificationError
from support.targets import (
    SECRET,
    WebhookServer,
    captured,
    load_handler,
    make_client,
    make_lead,
    put_ssm_secret,
    queue_depth,
    verified,
)

from openbrain.aws.backend import Backend
from openbrain.core.ids import new_id
from openbrain.domain.events import MessageDelivered, MessageScheduled
from openbrain.storage.orm import ChatSession, Client
from openbrain.targets.poller import PollResult, poll_once

pytestmark = pytest.mark.integration
TARGET = "message-webhook"
TEXT = "Time to stretch: stand up, reach for the ceiling, hold for ten seconds."


@pytest.fixture(scope="module")
def handler() -> Any:
    return load_handler("message_webhook")


@pytest.fixture
def session(backend: Backend, client: Client) -> ChatSession:
    """A session of a verified end user who left a lead."""
    session = ChatSession("acme", profile_name="coach", config_snapshot={"profile_name": "coach"})
    session.bind_user("user-42")
    session.lead_id = "01KLEADLEADLEADLEADLEAD000"
    session.save()
    return session


def _delivered(session: ChatSession, **changes: Any) -> MessageDelivered:
    fields = {"client_id": session.client_id, "session_id": session.session_id,
              "tool_call_id": "2026-12-05T08:00:00Z", "schedule_id": "01KSCHEDULESCHEDULESCHED00",
              "recipient": "user", "text": TEXT, "delivered_at": datetime(2026, 12, 5, 8, 0, 1, tzinfo=UTC), **changes}
    return MessageDelivered(**fields)


def _scheduled(session: ChatSession) -> MessageScheduled:
    return MessageScheduled(client_id=session.client_id, session_id=session.session_id, tool_call_id="call_7",
                            schedule_id="01KSCHEDULESCHEDULESCHED00", recipient="chatbot",
                            expression="cron(0 8 * * ? *)", timezone="Europe/London",
                            description="every day at 08:00 (Europe/London)",
                            next_at=datetime(2026, 12, 5, 8, tzinfo=UTC), created_by="user")


def _run(backend: Backend, handler: Any) -> PollResult:
    return poll_once(backend, TARGET, handler, visibility_timeout=0)


def test_a_delivered_message_is_posted_signed_with_its_text_and_who_to_send_it_to(
    backend: Backend, webhook: WebhookServer, session: ChatSession, handler: Any
) -> None:
    # given
    event = _delivered(session)
    backend.events.publish([event])

    # when
    result = _run(backend, handler)

    # then
    assert result.failed == [] and len(result.received) == 1
    [request] = webhook.requests
    assert request.headers["x-openbrain-event"] == "message.delivered.v1"
    assert request.headers["webhook-id"] == event.idempotency_key
    assert request.headers["user-agent"] == "OpenBrain-Webhook/1"
    assert verified(request.body, request.headers) == request.json()
    with pytest.raises(WebhookVerificationError):
        verified(request.body, request.headers, secret="whsec_" + SECRET[6:][::-1])
    assert request.json() == {
        "event": {"type": "message.delivered.v1", "event_id": event.event_id,
                  "idempotency_key": event.idempotency_key},
        "message": {"schedule_id": "01KSCHEDULESCHEDULESCHED00", "recipient": "user", "text": TEXT,
                    "delivered_at": "2026-12-05T08:00:01Z"},
        "session_id": session.session_id,
        "profile_name": "coach",
        "end_user_id": "user-42",
        "lead_id": "01KLEADLEADLEADLEADLEAD000",
    }
    assert queue_depth(backend, backend.queue_urls["openbrain-message-webhook"]) == 0


def test_a_scheduled_message_is_posted_with_when_it_fires(
    backend: Backend, webhook: WebhookServer, session: ChatSession, handler: Any
) -> None:
    backend.events.publish([_scheduled(session)])

    assert _run(backend, handler).failed == []

    [request] = webhook.requests
    assert request.headers["x-openbrain-event"] == "message.scheduled.v1"
    assert request.json()["message"] == {
        "schedule_id": "01KSCHEDULESCHEDULESCHED00", "recipient": "chatbot", "expression": "cron(0 8 * * ? *)",
        "timezone": "Europe/London", "description": "every day at 08:00 (Europe/London)",
        "next_at": "2026-12-05T08:00:00Z", "created_by": "user"}


def test_only_message_events_reach_the_message_webhook_and_lead_events_the_lead_webhook(
    backend: Backend, webhook: WebhookServer, session: ChatSession, handler: Any
) -> None:
    backend.events.publish([captured(make_lead()), _delivered(session)])

    messages = _run(backend, handler)

    assert len(messages.received) == 1
    assert [r.headers["x-openbrain-event"] for r in webhook.requests] == ["message.delivered.v1"]
    assert queue_depth(backend, backend.queue_urls["openbrain-lead-webhook"]) == 1


def test_an_expired_session_still_gets_its_message_posted_without_its_fields(
    backend: Backend, webhook: WebhookServer, client: Client, handler: Any
) -> None:
    gone = ChatSession("acme", session_id=new_id(), profile_name="coach")  # never saved
    backend.events.publish([_delivered(gone)])

    assert _run(backend, handler).failed == []

    body = webhook.requests[0].json()
    assert (body["session_id"], body["profile_name"], body["end_user_id"], body["lead_id"]) == (
        gone.session_id, None, None, None)


def test_a_webhook_error_fails_the_record_until_it_is_dead_lettered(
    backend: Backend, webhook: WebhookServer, session: ChatSession, handler: Any
) -> None:
    # given
    webhook.status = 503
    backend.events.publish([_delivered(session)])

    # when: retried at once until SQS moves it
    attempts = 0
    while (result := _run(backend, handler)).received:
        assert result.failed == result.received
        attempts += 1
        assert attempts <= 10

    # then: tried maxReceiveCount times, the envelope kept in the DLQ
    assert attempts == 5 and len(webhook.requests) == 5
    sqs = backend.client("sqs")
    [dead] = sqs.receive_message(QueueUrl=backend.queue_urls["openbrain-message-webhook-dlq"])["Messages"]
    assert json.loads(dead["Body"])["detail"]["text"] == TEXT


def test_a_client_without_a_webhook_is_not_posted_to_and_not_retried(
    backend: Backend, webhook: WebhookServer, session: ChatSession, client: Client, handler: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client.webhook_url = None
    client.save()
    backend.events.publish([_delivered(session)])

    with caplog.at_level(logging.INFO, logger="openbrain"):
        result = _run(backend, handler)

    assert result.failed == [] and len(result.received) == 1
    assert webhook.requests == []
    [record] = [r for r in caplog.records if "the client has no webhook URL" in r.getMessage()]
    assert record.levelno == logging.INFO and "ignored" in record.getMessage()


def test_a_client_that_no_longer_exists_is_acknowledged_with_a_warning(
    backend: Backend, webhook: WebhookServer, session: ChatSession, client: Client, handler: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    backend.events.publish([_delivered(session)])
    client.delete()

    with caplog.at_level(logging.INFO, logger="openbrain"):
        result = _run(backend, handler)

    assert result.failed == [] and webhook.requests == []
    assert any(r.levelno == logging.WARNING and "the client no longer exists" in r.getMessage()
               for r in caplog.records)


def test_a_message_of_the_clis_client_public_which_has_no_record_is_acknowledged_at_info(
    backend: Backend, webhook: WebhookServer, handler: Any, caplog: pytest.LogCaptureFixture,
) -> None:
    # given: a reminder delivered in a session of `ob`'s own client, `public`, which needs no record
    session = ChatSession("public", profile_name="default")
    session.save()
    backend.events.publish([_delivered(session)])

    with caplog.at_level(logging.INFO, logger="openbrain"):
        result = _run(backend, handler)

    # then: ignored as for a client without a webhook URL, not a warning
    assert result.failed == [] and len(result.received) == 1 and webhook.requests == []
    assert [r.levelname for r in caplog.records if "for client public" in r.getMessage()] == ["INFO"]
    assert "ignored (the CLIs' client public has no record, so no webhook)" in caplog.text


def test_a_webhook_without_a_signing_secret_fails_the_record(
    backend: Backend, webhook: WebhookServer, session: ChatSession, client: Client, handler: Any
) -> None:
    client.webhook_secret_ref = None
    client.save()
    backend.events.publish([_delivered(session)])

    result = _run(backend, handler)

    assert result.failed == result.received and len(result.failed) == 1
    assert webhook.requests == []


def test_logs_name_ids_never_the_text_the_secret_or_the_url_token(
    backend: Backend, webhook: WebhookServer, session: ChatSession, handler: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        backend.events.publish([_delivered(session)])
        _run(backend, handler)
        webhook.status = 500
        backend.events.publish([_delivered(session, tool_call_id="2026-12-06T08:00:00Z")])
        assert len(_run(backend, handler).failed) == 1

    text = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("openbrain"))
    assert "01KSCHEDULESCHEDULESCHED00" in text and "HTTP 500" in text
    for value in (TEXT, SECRET, "url-token-123", "user-42"):
        assert value not in text


def test_a_secret_in_ssm_is_what_signs(backend: Backend, webhook: WebhookServer, session: ChatSession,
                                       handler: Any) -> None:
    # given: another client, whose own secret signs its deliveries
    ref = put_ssm_secret(backend, "/openbrain/globex/secret", "whsec_Z2xvYmV4LXNpZ25pbmctc2VjcmV0LTI0Yg==")
    make_client(webhook.url, ref, "globex")
    other = ChatSession("globex", profile_name="coach")
    other.save()
    backend.events.publish([_delivered(other)])

    assert _run(backend, handler).failed == []

    [request] = webhook.requests
    assert verified(request.body, request.headers, secret="whsec_Z2xvYmV4LXNpZ25pbmctc2VjcmV0LTI0Yg==")
    with pytest.raises(WebhookVerificationError):
        verified(request.body, request.headers)
