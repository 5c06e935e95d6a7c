"""The whole stack on one machine: the chat API handler over real HTTP, and the event targets polled.

`LocalStack` (no relation to the product of that name) does what API Gateway and Lambda's SQS event
source do in a deployment, with the very same handler functions:
- each HTTP request becomes an API Gateway REST (v1 proxy) event for `openbrain.api.app.handler`, and
  its response goes back as HTTP;
- each target's queue is polled and its batches handed to the target's handler; what fails stays on
  the queue, is received again after the retry delay, and after `maxReceiveCount` receives SQS moves it
  to the target's dead-letter queue (`ob-admin dlq list|redrive`).
Handlers run one at a time (a lock): the Powertools resolver keeps per-invocation state, as a Lambda
execution environment runs one event at a time.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from openbrain.aws.resources import TARGETS
from openbrain.conversation.outbox import SWEEP_GRACE
from openbrain.conversation.outbox import flush as flush_outboxes
from openbrain.core.ids import new_id
from openbrain.storage.orm.client import Client
from openbrain.targets.poller import LocalContext, poll_once
from openbrain.targets.queues import target_named

if TYPE_CHECKING:
    from openbrain.aws.backend import Backend
    from openbrain.storage.stores import Stores

log = logging.getLogger(__name__)
DEMO_CLIENT_ID = "local"
FLUSH_EVERY_SECONDS = 10.0


def api_gateway_event(method: str, target: str, headers: list[tuple[str, str]], body: bytes,
                      source_ip: str) -> dict[str, Any]:
    """The API Gateway REST proxy event for one HTTP request."""
    parts = urlsplit(target)
    query = parse_qs(parts.query, keep_blank_values=True)
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in headers:
        single[name] = value
        multi.setdefault(name, []).append(value)
    try:
        text: str | None = body.decode() if body else None
        encoded = False
    except UnicodeDecodeError:
        text, encoded = base64.b64encode(body).decode(), True
    return {
        "resource": "/{proxy+}",
        "path": parts.path,
        "httpMethod": method,
        "headers": single,
        "multiValueHeaders": multi,
        "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": {"proxy": parts.path.lstrip("/")},
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/{proxy+}",
            "httpMethod": method,
            "path": parts.path,
            "stage": "local",
            "requestId": new_id(),
            "requestTimeEpoch": int(time.time() * 1000),
            "protocol": "HTTP/1.1",
            "identity": {"sourceIp": source_ip, "userAgent": single.get("User-Agent", "")},
        },
        "body": text,
        "isBase64Encoded": encoded,
    }


@dataclass
class DemoClient:
    client_id: str
    api_key: str
    widget_key: str


def ensure_demo_client(stores: Stores, origins: list[str], api_key: str | None = None, *,
                       offline: bool = False) -> DemoClient:
    """The `local` client, created if missing, with a server key (`api_key` if given: it must name the
    client, `ob.local.<secret>`; else a new one) and a new widget key. Its earlier keys stop working.
    With `offline` (no model key configured), its `default` profile, if not stored yet, is stored with
    the offline model, so the demo chats on any backend."""
    from openbrain.core.errors import NotFoundError
    from openbrain.domain.profile import DEFAULT_PROFILE
    from openbrain.storage.orm.agent_config import AgentConfig
    from openbrain.storage.orm.client import SERVER, WIDGET

    try:
        client = stores.clients.get(DEMO_CLIENT_ID)
    except NotFoundError:
        client = Client(DEMO_CLIENT_ID, display_name="Local demo client")
    allowed: set[str] = {str(origin) for origin in client.allowed_origins or []} | set(origins)
    client.allowed_origins = sorted(allowed)  # type: ignore[arg-type]
    client.revoke_api_keys()
    api_key = client.add_api_key(SERVER, api_key)
    widget_key = client.add_api_key(WIDGET)
    stores.clients.save(client)
    if offline:
        try:
            stores.profiles.get(DEMO_CLIENT_ID, DEFAULT_PROFILE)
        except NotFoundError:
            stores.profiles.save(AgentConfig(DEMO_CLIENT_ID, DEFAULT_PROFILE, model="offline"))
    return DemoClient(DEMO_CLIENT_ID, api_key, widget_key)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the stdlib's 5 resets connections when a few dozen clients connect at once


class LocalStack:
    """Serve the chat API on `host:port`, poll every target's queue and sweep the sessions' outboxes (every
    `outbox_grace`) until `stop()`."""

    def __init__(self, backend: Backend, host: str = "127.0.0.1", port: int = 8080, *,
                 poll_interval: float = 0.5, retry_after: int | None = None,
                 outbox_grace: timedelta = SWEEP_GRACE) -> None:
        from openbrain.api.app import handler as api_handler

        self.backend = backend
        self.api_handler = api_handler
        self.poll_interval = poll_interval
        self.outbox_grace = outbox_grace
        self.retry_after = retry_after
        self.lock = threading.Lock()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self.server = _Server((host, port), self._request_handler_class())

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        name = host.decode() if isinstance(host, bytes) else host
        return f"http://{name}:{port}"

    def invoke_api(self, event: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            return dict(self.api_handler(event, LocalContext(function_name="chat-api", timeout_ms=29_000)))

    def _request_handler_class(self) -> type[BaseHTTPRequestHandler]:
        stack = self

        class RequestHandler(BaseHTTPRequestHandler):
            server_version = "openbrain-serve"
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                event = api_gateway_event(self.command, self.path, list(self.headers.items()), body,
                                          self.client_address[0])
                try:
                    response = stack.invoke_api(event)
                except Exception:  # the handler maps every error itself; this is a last line of defence
                    log.exception("the chat API handler raised")
                    response = {"statusCode": 500, "headers": {"Content-Type": "application/json"},
                                "body": json.dumps({"error": {"code": "internal_error",
                                                              "message": "internal error"}})}
                self._reply(response)

            def _reply(self, response: dict[str, Any]) -> None:
                raw = response.get("body") or ""
                payload = base64.b64decode(raw) if response.get("isBase64Encoded") else str(raw).encode()
                self.send_response(int(response.get("statusCode", 200)))
                headers: dict[str, list[str]] = {k: [str(v)] for k, v in (response.get("headers") or {}).items()}
                for name, values in (response.get("multiValueHeaders") or {}).items():
                    headers[name] = [str(v) for v in values]
                for name, values in headers.items():
                    if name.lower() not in {"content-length", "connection"}:
                        for value in values:
                            self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = _serve

            def log_message(self, format: str, *args: Any) -> None:
                log.info("%s %s", self.address_string(), format % args)

        return RequestHandler

    def _poll_forever(self, name: str) -> None:
        handler = target_named(name).load_handler()
        while not self._stopping.is_set():
            try:
                with self.lock:
                    result = poll_once(self.backend, name, handler, visibility_timeout=self.retry_after)
            except Exception:
                log.exception("polling the %s queue failed", name)
                result = None
            if not (result and result.received):
                self._stopping.wait(self.poll_interval)

    def _sweep_forever(self) -> None:
        """What `OutboxSweepFunction` does when deployed: publish the outboxes turns left (docs/events.md)."""
        while not self._stopping.wait(self.outbox_grace.total_seconds() or self.poll_interval):
            try:
                with self.lock:
                    flush_outboxes(self.backend, self.outbox_grace)
            except Exception:
                log.exception("sweeping the sessions' outboxes failed")

    def _flush_forever(self) -> None:
        while not self._stopping.wait(FLUSH_EVERY_SECONDS):
            with self.lock:
                self.backend.flush()

    def start(self) -> LocalStack:
        """Start serving and polling in background threads."""
        workers = [threading.Thread(target=self.server.serve_forever, name="ob-serve-http", daemon=True)]
        workers += [threading.Thread(target=self._poll_forever, args=(t.name,), name=f"ob-serve-{t.name}",
                                     daemon=True) for t in TARGETS]
        workers.append(threading.Thread(target=self._flush_forever, name="ob-serve-flush", daemon=True))
        workers.append(threading.Thread(target=self._sweep_forever, name="ob-serve-outbox", daemon=True))
        for worker in workers:
            worker.start()
        self._threads = workers
        return self

    def stop(self) -> None:
        self._stopping.set()
        self.server.shutdown()
        self.server.server_close()
        for worker in self._threads:
            worker.join(timeout=5)
