"""The lead-webhook target, in-process: real loopback webhook, moto SSM/DynamoDB/EventBridge/SQS, and the
Lambda handler fed batches received from the target's real queue."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from standardwebhooks import WebhookVerificationError
from support.targets import (
    SECRET,
    WebhookServer,
    captured,
    drain_bodies,
    make_client,
    make_lead,
    put_ssm_secret,
    queue_depth,
    queue_url,
    receive_lambda_event,
    run_target,
    verified,
)

from openbrain.aws.backend import Backend
from openbrain.core.errors import ConfigurationError
from openbrain.domain.events import LeadUpdated
from openbrain.storage.orm import Client, Lead
from openbrain.storage.orm.lead import MAX_DELIVERED_KEYS
from openbrain.targets.http import check_webhook_url
from openbrain.targets.lead_webhook import LeadWebhook

pytestmark = pytest.mark.integration
SM_SECRET = "whsec_c20tc2VjcmV0LWZyb20tc2VjcmV0cy1tYW5hZ2Vy"


def test_a_captured_lead_is_posted_signed_marked_delivered_and_announced(
    backend: Backend, webhook: WebhookServer, lead: Lead, delivered_queue: str, handler: Any
) -> None:
    # given: lead.captured.v1 published on the bus, and the batch SQS hands the target's Lambda
    event = captured(lead)
    backend.events.publish([event])
    lambda_event, messages = receive_lambda_event(backend)
    assert len(messages) == 1

    # when
    response = handler(lambda_event, None)

    # then: the webhook got the signed body
    assert response == {"batchItemFailures": []}
    [request] = webhook.requests
    assert request.path == "/hooks/leads?token=url-token-123"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-openbrain-event"] == "lead.captured.v1"
    assert request.headers["webhook-id"] == event.idempotency_key
    assert verified(request.body, request.headers) == request.json()
    with pytest.raises(WebhookVerificationError):
        verified(request.body + b" ", request.headers)
    body = request.json()
    assert body["event"] == {"type": "lead.captured.v1", "event_id": event.event_id,
                             "idempotency_key": event.idempotency_key}
    assert body["profile_name"] == "sales"
    assert body["session_id"] == lead.session_id
    assert body["lead"]["lead_id"] == lead.lead_id
    assert body["lead"]["email"] == "ada@example.com"
    assert body["lead"]["full_name"] == "Ada Lovelace"
    # ... the lead is marked delivered
    stored = Lead.get("acme", lead.lead_id)
    assert stored.status == "delivered"
    assert stored.delivered_at is not None
    assert stored.delivered_keys == [event.idempotency_key]
    # ... and lead.delivered.v1 was published on the bus
    [delivered] = drain_bodies(backend, delivered_queue)
    assert delivered["source"] == "openbrain"
    assert delivered["detail-type"] == "lead.delivered.v1"
    detail = delivered["detail"]
    assert detail["lead_id"] == lead.lead_id
    assert detail["client_id"] == "acme"
    assert detail["target"] == "lead-webhook"
    assert detail["delivered_event_type"] == "lead.captured.v1"
    assert detail["delivered_event_id"] == event.event_id
    assert detail["delivered_idempotency_key"] == event.idempotency_key


def test_lead_delivered_does_not_feed_the_lead_webhook_queue_again(
    backend: Backend, lead: Lead, handler: Any
) -> None:
    backend.events.publish([captured(lead)])

    result = run_target(backend, handler)

    assert result.failed == [] and len(result.received) == 1
    assert queue_depth(backend, queue_url(backend)) == 0


def test_a_redelivered_event_is_acknowledged_without_posting_twice(
    backend: Backend, webhook: WebhookServer, lead: Lead, delivered_queue: str, handler: Any
) -> None:
    # given: the same tool call's event delivered twice (at-least-once), once before the first is handled
    first = captured(lead)
    again = captured(lead)
    assert first.event_id != again.event_id and first.idempotency_key == again.idempotency_key
    backend.events.publish([first])
    run_target(backend, handler)

    # when
    backend.events.publish([again])
    backend.events.publish([first])
    results = [run_target(backend, handler), run_target(backend, handler)]

    # then
    assert sum(len(r.received) for r in results) == 2
    assert all(r.failed == [] for r in results)
    assert len(webhook.requests) == 1
    assert len(drain_bodies(backend, delivered_queue)) == 1
    assert queue_depth(backend, queue_url(backend)) == 0


def test_an_update_after_delivery_is_posted_again_with_its_own_key(
    backend: Backend, webhook: WebhookServer, lead: Lead, handler: Any
) -> None:
    assert lead.session_id
    backend.events.publish([captured(lead)])
    run_target(backend, handler)
    lead.refresh()
    lead.phone = "+1 555 010 9999"
    lead.save()
    update = LeadUpdated(client_id="acme", session_id=lead.session_id, tool_call_id="call_2",
                         lead_id=lead.lead_id, changed_fields=["phone"])

    backend.events.publish([update])
    result = run_target(backend, handler)

    assert result.failed == []
    assert [r.headers["x-openbrain-event"] for r in webhook.requests] == ["lead.captured.v1", "lead.updated.v1"]
    assert webhook.requests[1].json()["lead"]["phone"] == "+1 555 010 9999"
    stored = Lead.get("acme", lead.lead_id)
    assert stored.status == "delivered"
    assert stored.delivered_keys == [captured(lead).idempotency_key, update.idempotency_key]


def test_a_webhook_error_fails_only_that_record(
    backend: Backend, webhook: WebhookServer, lead: Lead, delivered_queue: str, handler: Any
) -> None:
    # given: a second client whose webhook answers 500, and one lead of each in the same batch
    with WebhookServer() as broken:
        broken.status = 500
        make_client(broken.url, put_ssm_secret(backend, "/openbrain/globex/secret", "globex-secret"), "globex")
        other = make_lead("globex")
        backend.events.publish([captured(lead), captured(other)])
        lambda_event, messages = receive_lambda_event(backend)
        assert len(messages) == 2
        by_lead = {json.loads(m["Body"])["detail"]["lead_id"]: m["MessageId"] for m in messages}

        # when
        response = handler(lambda_event, None)

        # then
        assert response == {"batchItemFailures": [{"itemIdentifier": by_lead[other.lead_id]}]}
        assert len(broken.requests) == 1
    assert len(webhook.requests) == 1
    assert Lead.get("globex", other.lead_id).status == "new"
    assert Lead.get("globex", other.lead_id).delivered_keys == []
    assert [b["detail"]["lead_id"] for b in drain_bodies(backend, delivered_queue)] == [lead.lead_id]


def test_every_record_failing_is_still_a_batch_response(
    backend: Backend, webhook: WebhookServer, lead: Lead, handler: Any
) -> None:
    webhook.status = 503
    backend.events.publish([captured(lead)])
    lambda_event, [message] = receive_lambda_event(backend)

    assert handler(lambda_event, None) == {"batchItemFailures": [{"itemIdentifier": message["MessageId"]}]}


def test_a_malformed_body_is_a_failed_record_not_a_crash(
    backend: Backend, webhook: WebhookServer, lead: Lead, handler: Any
) -> None:
    sqs = backend.client("sqs")
    bad = {
        "not json": "{not json",
        "a list": "[1, 2]",
        "other source": json.dumps({"source": "elsewhere", "detail-type": "lead.captured.v1", "detail": {}}),
        "unknown type": json.dumps({"source": "openbrain", "detail-type": "lead.deleted.v9", "detail": {}}),
        "bad detail": json.dumps({"source": "openbrain", "detail-type": "lead.captured.v1", "detail": {"x": 1}}),
        "not ours": json.dumps({"source": "openbrain", "detail-type": "conversation.ended.v1", "detail": {
            "client_id": "acme", "session_id": "s", "tool_call_id": "c", "turn_count": 1}}),
    }
    ids = {sqs.send_message(QueueUrl=queue_url(backend), MessageBody=body)["MessageId"]: name
           for name, body in bad.items()}
    backend.events.publish([captured(lead)])

    results = [run_target(backend, handler, visibility_timeout=30) for _ in range(2)]

    failed = {ids[i] for r in results for i in r.failed}
    assert failed == set(bad)
    assert sum(len(r.received) for r in results) == len(bad) + 1
    assert len(webhook.requests) == 1


@pytest.mark.parametrize("missing", ["webhook_url", "webhook_secret_ref", "the secret itself"])
def test_a_client_without_a_webhook_or_secret_fails_the_record(
    backend: Backend, webhook: WebhookServer, missing: str, handler: Any
) -> None:
    client = make_client(webhook.url, "ssm:/openbrain/acme/never-created" if missing == "the secret itself"
                         else put_ssm_secret(backend))
    if missing != "the secret itself":
        setattr(client, missing, None)
        client.save()
    lead = make_lead()
    backend.events.publish([captured(lead)])

    result = run_target(backend, handler)

    assert result.failed == result.received and len(result.failed) == 1
    assert webhook.requests == []
    assert Lead.get("acme", lead.lead_id).status == "new"


@pytest.mark.parametrize("gone", ["lead", "client"])
def test_a_lead_or_client_that_no_longer_exists_is_acknowledged_not_retried(
    backend: Backend, webhook: WebhookServer, client: Client, gone: str, handler: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    lead = make_lead()
    backend.events.publish([captured(lead)])
    (lead if gone == "lead" else client).delete()

    with caplog.at_level(logging.INFO, logger="openbrain"):
        result = run_target(backend, handler)

    assert result.failed == [] and len(result.received) == 1
    assert webhook.requests == []
    assert queue_depth(backend, queue_url(backend)) == 0
    assert any(r.levelno == logging.WARNING and f"the {gone} no longer exists" in r.getMessage()
               for r in caplog.records)


def test_a_lead_of_the_clis_client_public_which_has_no_record_is_acknowledged_at_info(
    backend: Backend, webhook: WebhookServer, handler: Any, caplog: pytest.LogCaptureFixture,
) -> None:
    # given: a lead `ob` captured for its own client, `public`, which needs no record (docs/admin.md)
    backend.events.publish([captured(make_lead("public"))])

    with caplog.at_level(logging.INFO, logger="openbrain"):
        result = run_target(backend, handler)

    # then: nothing to deliver it to, and nothing wrong: no warning (ob-serve printed one per lead at start)
    assert result.failed == [] and len(result.received) == 1 and webhook.requests == []
    assert [r.levelname for r in caplog.records if "for client public" in r.getMessage()] == ["INFO"]
    assert "ignored (the CLIs' client public has no record, so no webhook)" in caplog.text


def test_a_secrets_manager_secret_signs_too(backend: Backend, webhook: WebhookServer, handler: Any) -> None:
    backend.client("secretsmanager").create_secret(Name="openbrain/acme/webhook", SecretString=SM_SECRET)
    make_client(webhook.url, "secretsmanager:openbrain/acme/webhook")
    backend.events.publish([captured(make_lead())])

    assert run_target(backend, handler).failed == []

    [request] = webhook.requests
    assert verified(request.body, request.headers, secret=SM_SECRET)


def test_logs_carry_ids_never_the_secret_the_url_token_or_the_lead(
    backend: Backend, webhook: WebhookServer, lead: Lead, handler: Any, caplog: pytest.LogCaptureFixture
) -> None:
    backend.events.publish([captured(lead)])
    with caplog.at_level(logging.DEBUG):
        run_target(backend, handler)
        webhook.status = 500
        backend.events.publish([captured(lead, "call_9")])
        assert len(run_target(backend, handler).failed) == 1

    text = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("openbrain"))
    assert lead.lead_id in text
    for value in (SECRET, "url-token-123", "ada@example.com", "Ada Lovelace", "7946"):
        assert value not in text


def test_a_redirect_is_not_followed_and_fails_the_record(backend: Backend, handler: Any) -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    hits: list[str] = []

    class Redirecting(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            hits.append(self.command)
            self.send_response(302)
            self.send_header("Location", "/elsewhere")
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_POST

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirecting)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        make_client(f"http://127.0.0.1:{server.server_address[1]}/hook", put_ssm_secret(backend))
        backend.events.publish([captured(make_lead())])
        result = run_target(backend, handler)
    finally:
        server.shutdown()
        server.server_close()

    assert len(result.failed) == 1
    assert hits == ["POST"]


def test_an_unanswering_webhook_times_out_and_fails(backend: Backend, lead: Lead) -> None:
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepts connections, never answers
    try:
        client = Client.get("acme")
        client.webhook_url = f"http://127.0.0.1:{listener.getsockname()[1]}/hook"
        client.save()
        target = LeadWebhook(backend, timeout=0.3)

        with pytest.raises(Exception) as caught:
            target.deliver(captured(lead))
    finally:
        listener.close()

    assert getattr(caught.value, "code", "") == "upstream_timeout"
    assert Lead.get("acme", lead.lead_id).status == "new"


@pytest.mark.parametrize("url", ["http://crm.example.com/hook", "file:///etc/passwd", "ftp://x/y", "https://"])
def test_only_https_or_loopback_http_webhooks_are_accepted(url: str) -> None:
    with pytest.raises(ConfigurationError):
        check_webhook_url(url)


@pytest.mark.parametrize("url", ["https://crm.example.com/hook", "http://127.0.0.1:8080/x", "http://localhost/x"])
def test_https_and_loopback_webhooks_are_accepted(url: str) -> None:
    check_webhook_url(url)


def test_delivered_keys_keep_only_the_latest(backend: Backend, webhook: WebhookServer, lead: Lead) -> None:
    target = LeadWebhook(backend)
    for i in range(MAX_DELIVERED_KEYS + 3):
        assert target.deliver(captured(lead, f"call_{i}")).status == "delivered"

    keys = Lead.get("acme", lead.lead_id).delivered_keys
    assert len(keys) == MAX_DELIVERED_KEYS
    assert keys[-1] == captured(lead, f"call_{MAX_DELIVERED_KEYS + 2}").idempotency_key
    assert captured(lead, "call_0").idempotency_key not in keys
