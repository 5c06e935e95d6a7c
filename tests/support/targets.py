"""Real pieces for target tests: a webhook HTTP server on loopback, a signing secret in (moto) SSM, a
client, session and lead in the tables, a queue that catches published events, and the target's Lambda
handler loaded from its file the way Lambda loads it (`lambdas/targets/lead_webhook/app.py`, `handler`)."""

from __future__ import annotations

import importlib.util
import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from openbrain.aws.backend import Backend
from openbrain.aws.resources import TARGETS
from openbrain.domain.events import EVENT_SOURCE, LeadCaptured
from openbrain.storage.orm import ChatSession, Client, Lead
from openbrain.targets.poller import PollResult, poll_once, sqs_event

ROOT = Path(__file__).resolve().parents[2]
APP_PATH = ROOT / "lambdas" / "targets" / "lead_webhook" / "app.py"
CLIENT_ID = "acme"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # Standard Webhooks: whsec_ + base64 of 24 bytes
SECRET_PARAMETER = "/openbrain/acme/webhook-signing-secret"
TARGET = "lead-webhook"


def verified(body: bytes, headers: dict[str, str], secret: str = SECRET) -> Any:
    """The delivery's JSON, verified as two real Standard Webhooks receivers do (the `standardwebhooks` and
    `svix` libraries); raises their `WebhookVerificationError` if either refuses it."""
    from standardwebhooks import Webhook
    from svix.webhooks import Webhook as SvixWebhook

    SvixWebhook(secret).verify(body, headers)
    return Webhook(secret).verify(body, headers)


def load_handler(function: str = "lead_webhook") -> Any:
    """`handler` of the function's app.py (`lambdas/targets/<function>/app.py`), imported from its path as Lambda
    does."""
    spec = importlib.util.spec_from_file_location(f"{function}_app", ROOT / "lambdas" / "targets" / function / "app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.handler


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class WebhookServer:
    """A client's CRM webhook: records every POST, answers `status` (settable while it runs)."""

    def __init__(self) -> None:
        self.status = 200
        self.requests: list[Received] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                server.requests.append(
                    Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                )
                reply = b'{"ok": true}' if server.status < 300 else b'{"error": "down"}'
                self.send_response(server.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/hooks/leads?token=url-token-123"

    def __enter__(self) -> WebhookServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)


def put_ssm_secret(backend: Backend, name: str = SECRET_PARAMETER, value: str = SECRET) -> str:
    """The library's `put_ssm_secret` with the targets tests' secret by default; its reference."""
    from openbrain.aws.secrets import put_ssm_secret as put

    return put(backend, name, value)


def make_client(webhook_url: str | None, secret_ref: str | None, client_id: str = CLIENT_ID) -> Client:
    client = Client(client_id, display_name="Acme", webhook_url=webhook_url, webhook_secret_ref=secret_ref)
    client.save()
    return client


def make_lead(client_id: str = CLIENT_ID, profile_name: str = "sales") -> Lead:
    session = ChatSession(client_id, profile_name=profile_name, config_snapshot={"profile_name": profile_name})
    session.save()
    lead = Lead(client_id, session_id=session.session_id, full_name="Ada Lovelace", email="ada@example.com",
                phone="+44 20 7946 0958")
    lead.save()
    return lead


def captured(lead: Lead, tool_call_id: str = "call_1") -> LeadCaptured:
    assert lead.session_id
    return LeadCaptured(client_id=lead.client_id, session_id=lead.session_id, tool_call_id=tool_call_id,
                        lead_id=lead.lead_id)


def catch_events(backend: Backend, detail_type: str) -> str:
    """A queue fed by a rule on the bus for `detail_type`; returns its URL."""
    events, sqs = backend.client("events"), backend.client("sqs")
    name = "test-catch-" + detail_type.replace(".", "-")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    bus = backend.settings.event_bus_name
    events.put_rule(Name=name, EventBusName=bus, State="ENABLED",
                    EventPattern=json.dumps({"source": [EVENT_SOURCE], "detail-type": [detail_type]}))
    events.put_targets(Rule=name, EventBusName=bus, Targets=[{"Id": name, "Arn": arn}])
    return str(url)


def drain_bodies(backend: Backend, url: str) -> list[dict[str, Any]]:
    """Every message on a queue (consumed), as parsed JSON bodies."""
    sqs = backend.client("sqs")
    bodies: list[dict[str, Any]] = []
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        if not messages:
            return bodies
        for message in messages:
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def queue_url(backend: Backend, dlq: bool = False) -> str:
    return backend.queue_urls["openbrain-lead-webhook" + ("-dlq" if dlq else "")]


def receive_lambda_event(backend: Backend, visibility_timeout: int = 0) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Receive a batch from the real target queue and shape it as Lambda's SQS event."""
    sqs = backend.client("sqs")
    url = queue_url(backend)
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                   VisibilityTimeout=visibility_timeout, AttributeNames=["All"],
                                   MessageAttributeNames=["All"]).get("Messages", [])
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return sqs_event(messages, arn, backend.settings.region), messages


def run_target(backend: Backend, handler: Any, visibility_timeout: int = 0) -> PollResult:
    """One Lambda-like poll of the target queue: failed records are visible again at once."""
    return poll_once(backend, TARGET, handler, visibility_timeout=visibility_timeout)


def queue_depth(backend: Backend, url: str) -> int:
    attributes = backend.client("sqs").get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def fail_until_dead_lettered(backend: Backend, handler: Any) -> int:
    """Poll (retrying failures at once) until the source queue is empty; returns how often a message was tried."""
    attempts = 0
    for _ in range(TARGETS[0].max_receive_count * 3):
        result = run_target(backend, handler, visibility_timeout=0)
        if not result.received:
            return attempts
        attempts += len(result.received)
        assert result.failed == result.received
    raise AssertionError("the message never left the source queue")
