"""The whole stack on one machine: the chat API handler over real HTTP, and the event targets polled.

`LocalStack` (no relation to the product of that name) does what API Gateway and Lambda's SQS event
source do in a deployment, with the very same handler functions:
- each HTTP request becomes an API Gateway REST (v1 proxy) event for `openbrain.api.app.handler`, and
  its response goes back as HTTP; a WebSocket on `/ws` speaks the streaming protocol of API Gateway's
  WebSocket API with its handlers (`openbrain.local.websocket`);
- each target's queue is polled and its batches handed to the target's handler; what fails stays on
  the queue, is received again after the retry delay, and after `maxReceiveCount` receives SQS moves it
  to the target's dead-letter queue (`ob-admin dlq list|redrive`);
- scheduled messages (docs/scheduling.md) are delivered when due, as EventBridge Scheduler and the delivery
  Lambda do when deployed: every `schedule_interval` seconds the sessions are looked through for schedules due
  (`services.schedules.deliver_due`). Their state is in the store, so they survive a restart; a time missed
  while ob-serve was not running is delivered once, at the next start.
Requests are served by uvicorn (`openbrain.local.asgi`: limits, timeouts, JSON errors) and run side by
side, each with its own resolver state (`openbrain.api.app.PerRequestRestResolver`), in this process or in
`--workers N` processes sharing the listening socket and the store.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import hmac
import logging
import multiprocessing
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import uvicorn

from openbrain.aws.resources import TARGETS
from openbrain.conversation.outbox import SWEEP_GRACE
from openbrain.conversation.outbox import flush as flush_outboxes
from openbrain.conversation.schedules import Delivery
from openbrain.core.clock import utcnow
from openbrain.core.errors import ConfigurationError
from openbrain.core.ids import new_id
from openbrain.domain.urls import LOOPBACK_HOSTS
from openbrain.local.asgi import ApiGatewayApp, Limits, protocol_class
from openbrain.local.demo import DemoSite
from openbrain.local.websocket import MAX_MESSAGE_BYTES, WebSocketApp
from openbrain.services.schedules import deliver_due
from openbrain.storage.orm.client import KEY_PREFIXES, SERVER, WIDGET, Client
from openbrain.targets.poller import LocalContext, poll_once
from openbrain.targets.queues import target_named

if TYPE_CHECKING:
    from openbrain.aws.backend import Backend
    from openbrain.storage.stores import Stores

log = logging.getLogger(__name__)
DEMO_CLIENT_ID = "local"
MAX_DEMO_KEYS = 10  # of each kind the demo client keeps: an ob-serve's keys work until ten later starts
MAX_DEMO_ORIGINS = 20  # origins on this machine the demo client keeps: those of the ten newest ports
SAVE_ATTEMPTS = 5  # of the demo client's keys, when other ob-serves start at the same time
SHUTDOWN_GRACE_SECONDS = 30  # a turn ends within API Gateway's 29 s
WORKER_START_SECONDS = 60  # a spawned worker imports the API and attaches to the store before it serves
_SPAWN = multiprocessing.get_context("spawn")  # a fresh interpreter: no threads or locks copied by fork


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
    """The `local` client, created if missing, with a server key (`api_key` if given: it must name the client,
    `ob.local.<secret>`; else a new one) and the widget key that goes with it (`demo_widget_key`), both added to the
    keys it has: another ob-serve running on the store keeps its keys. Only the MAX_DEMO_KEYS newest keys of each
    kind stay (a given key already stored becomes the newest). `origins` join its allowed origins (`demo_origins`:
    those on this machine are bounded). With `offline` (no model key configured), its `default` profile, if not
    stored yet, is stored with the offline model, so the demo chats on any backend."""
    from openbrain.core.errors import ConflictError, NotFoundError
    from openbrain.domain.profile import DEFAULT_PROFILE
    from openbrain.storage.orm.agent_config import AgentConfig

    for attempt in range(1, SAVE_ATTEMPTS + 1):  # another ob-serve starting at once saves it first: add ours again
        try:
            client = stores.clients.get(DEMO_CLIENT_ID)
        except NotFoundError:
            client = Client(DEMO_CLIENT_ID, display_name="Local demo client")
        client.allowed_origins = demo_origins([str(origin) for origin in client.allowed_origins or []], origins)  # type: ignore[assignment]
        server_key = client.add_api_key(SERVER, api_key, keep=MAX_DEMO_KEYS)
        widget_key = client.add_api_key(WIDGET, demo_widget_key(server_key), keep=MAX_DEMO_KEYS)
        try:
            stores.clients.save(client)
            break
        except ConflictError:
            if attempt == SAVE_ATTEMPTS:
                raise
    if offline:
        try:
            stores.profiles.get(DEMO_CLIENT_ID, DEFAULT_PROFILE)
        except NotFoundError:
            with contextlib.suppress(ConflictError):  # another ob-serve starting at once stored it first
                stores.profiles.save(AgentConfig(DEMO_CLIENT_ID, DEFAULT_PROFILE, model="offline"))
    return DemoClient(DEMO_CLIENT_ID, server_key, widget_key)


def demo_widget_key(api_key: str) -> str:
    """The demo client's widget key for its server key `api_key`: the same for the same server key (ob-serve
    restarted with one `--api-key` keeps its widget key, and adds no other), and telling nothing of it (an HMAC:
    the widget key is public, in the /demo page)."""
    digest = hmac.new(api_key.encode(), b"ob-serve demo widget key", hashlib.sha256).digest()
    return f"{KEY_PREFIXES[WIDGET]}.{DEMO_CLIENT_ID}.{base64.urlsafe_b64encode(digest).decode().rstrip('=')}"


def demo_origins(stored: list[str], origins: list[str]) -> list[str]:
    """The demo client's allowed origins once `origins` join the `stored` ones: newest last, and of the origins on
    this machine (127.0.0.1, localhost, [::1]: ob-serve's own, one pair per port, and local dev sites) only the
    MAX_DEMO_ORIGINS newest, so the list does not grow with every port ever used; any other origin stays."""
    allowed = [*(origin for origin in stored if origin not in origins), *dict.fromkeys(origins)]
    local = [origin for origin in allowed if urlsplit(origin).hostname in LOOPBACK_HOSTS]
    stale = set(local[:-MAX_DEMO_ORIGINS])
    return [origin for origin in allowed if origin not in stale]


class LocalStack:
    """Serve the chat API on `host:port`, poll every target's queue, sweep the sessions' outboxes (every
    `outbox_grace`) and deliver the scheduled messages due (every `schedule_interval`) until `stop()`.

    Requests run side by side on the HTTP server's worker threads; each target's poller and the outbox sweep
    have a thread of their own, so a hung webhook (each delivery ends at `OB_WEBHOOK_TIMEOUT_SECONDS`) or a
    hung model (each turn ends at its deadline) delays only its own work. With `workers` > 1 the requests are
    served by that many processes on the one listening socket (the kernel hands each connection to one of
    them), each with its own backend attached to the shared store; the pollers and the sweep stay in this
    process, and a worker that dies is replaced. Each process holding WebSockets answers its own loopback
    Management API (`openbrain.local.management`), stopped with its server."""

    def __init__(self, backend: Backend, host: str = "127.0.0.1", port: int = 8080, *, workers: int = 1,
                 poll_interval: float = 0.5, retry_after: int | None = None,
                 outbox_grace: timedelta = SWEEP_GRACE, limits: Limits | None = None,
                 schedule_interval: float = 1.0, clock: Callable[[], datetime] = utcnow) -> None:
        if workers < 1:
            raise ConfigurationError(f"--workers must be at least 1, not {workers}")
        if workers > 1 and backend.in_process:
            raise ConfigurationError(
                f"--workers {workers} needs a store the workers share: the embedded store file (OB_MEMORY_STORE "
                "is 'none' here, which keeps the data in one process) or OB_BACKEND=aws")
        self.backend = backend
        self.workers = workers
        self.poll_interval = poll_interval
        self.outbox_grace = outbox_grace
        self.schedule_interval = schedule_interval
        self.clock = clock  # what time the scheduler thinks it is (tests move it instead of sleeping)
        self.retry_after = retry_after
        self.limits = limits or Limits(max_body_bytes=backend.settings.max_body_bytes)
        self._closing = threading.Event()  # no new requests, no worker replaced
        self._stopping = threading.Event()  # the pollers and the sweep stop
        self._threads: list[threading.Thread] = []
        self._processes: list[multiprocessing.process.BaseProcess] = []
        self.socket = _listen(host, port)
        self.demo = DemoSite()  # ob-serve gives it the demo client's widget key before start()
        self.server: uvicorn.Server | None = None
        self.websocket = WebSocketApp()  # this process's WebSockets (workers have their own), and their Management API

    @property
    def url(self) -> str:
        host, port = self.socket.getsockname()[:2]
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def _serve(self) -> None:
        assert self.server is not None
        self.server.run(sockets=[self.socket])

    def _spawn(self) -> multiprocessing.process.BaseProcess:
        ready = _SPAWN.Event()
        process = _SPAWN.Process(target=_worker, args=(self.socket, self.limits, self.demo, ready),
                                 name="ob-serve-worker", daemon=True)
        process.start()
        deadline = time.monotonic() + WORKER_START_SECONDS
        while not ready.wait(0.1):
            if not process.is_alive():
                raise ConfigurationError(f"an ob-serve worker exited with {process.exitcode} while starting "
                                         "(its error is above)")
            if time.monotonic() > deadline:
                process.kill()
                raise ConfigurationError(f"an ob-serve worker did not start serving within {WORKER_START_SECONDS} s")
        return process

    def _supervise(self) -> None:
        """Replace a worker process that died (uvicorn's own supervisor does the same for `uvicorn --workers`)."""
        while not self._closing.wait(1.0):
            for index, process in enumerate(self._processes):
                if not process.is_alive() and not self._closing.is_set():
                    log.warning("ob-serve worker %s exited with %s; starting another", process.pid, process.exitcode)
                    try:
                        self._processes[index] = self._spawn()
                    except ConfigurationError:
                        log.exception("could not replace the ob-serve worker")

    def _poll_forever(self, name: str) -> None:
        handler = target_named(name).load_handler()
        while not self._stopping.is_set():
            try:
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
                flush_outboxes(self.backend, self.outbox_grace)
            except Exception:
                log.exception("sweeping the sessions' outboxes failed")

    def run_schedules(self) -> list[Delivery]:
        """Deliver every scheduled message due by `clock()` (one pass of the scheduler thread)."""
        return deliver_due(self.backend, self.clock())

    def _schedule_forever(self) -> None:
        """What EventBridge Scheduler and `ScheduledDeliveryFunction` do when deployed; the first pass at once
        (a time missed while ob-serve was stopped is delivered now, once)."""
        while not self._stopping.is_set():
            try:
                self.run_schedules()
            except Exception:
                log.exception("delivering the scheduled messages due failed")
            self._stopping.wait(self.schedule_interval)

    def start(self) -> LocalStack:
        """Start serving and polling in the background; return once the server accepts requests."""
        threads = [threading.Thread(target=self._poll_forever, args=(t.name,), name=f"ob-serve-{t.name}",
                                    daemon=True) for t in TARGETS]
        threads.append(threading.Thread(target=self._sweep_forever, name="ob-serve-outbox", daemon=True))
        threads.append(threading.Thread(target=self._schedule_forever, name="ob-serve-scheduler", daemon=True))
        if self.workers == 1:
            self.server = _http_server(self.limits, self.demo, self.websocket)
            threads.insert(0, threading.Thread(target=self._serve, name="ob-serve-http", daemon=True))
        else:
            self._processes = [self._spawn() for _ in range(self.workers)]
            threads.append(threading.Thread(target=self._supervise, name="ob-serve-supervisor", daemon=True))
        for thread in threads:
            thread.start()
        self._threads = threads
        deadline = time.monotonic() + 30
        while (self.server is not None and not self.server.started and threads[0].is_alive()
               and time.monotonic() < deadline):
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop accepting, let in-flight requests finish (up to SHUTDOWN_GRACE_SECONDS), then stop the
        pollers (a delivery under way ends at its timeout) and the sweep."""
        self._closing.set()
        if self.server is not None:
            self.server.should_exit = True
        for process in self._processes:
            process.terminate()  # SIGTERM: uvicorn's graceful shutdown
        for process in self._processes:
            process.join(timeout=SHUTDOWN_GRACE_SECONDS + 5)
            if process.is_alive():
                process.kill()
        for thread in self._threads:
            if thread.name == "ob-serve-http":
                thread.join(timeout=SHUTDOWN_GRACE_SECONDS + 5)
        self.websocket.close()
        self.socket.close()
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout=30)


def invoke_api(event: dict[str, Any]) -> dict[str, Any]:
    """Run the chat API's Lambda handler on one API Gateway event, as Lambda would."""
    from openbrain.api.app import handler

    return dict(handler(event, LocalContext(function_name="chat-api", timeout_ms=29_000)))


def api_methods(path: str) -> list[str]:
    """The methods the chat API answers on `path` (what `ob-serve`'s 405 for a method it never routes names)."""
    from openbrain.api.app import app

    return app.methods_at(path)


def _http_server(limits: Limits, demo: DemoSite, websocket: WebSocketApp) -> uvicorn.Server:
    return uvicorn.Server(uvicorn.Config(
        ApiGatewayApp(invoke_api, api_gateway_event, limits, api_methods, websocket, demo),
        http=protocol_class(limits), ws_max_size=MAX_MESSAGE_BYTES, lifespan="off", log_config=None, access_log=False,
        timeout_keep_alive=limits.keep_alive, timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,
        h11_max_incomplete_event_size=limits.max_url_bytes + limits.max_header_bytes + 1024,
        server_header=False,
    ))


def _worker(sock: socket.socket, limits: Limits, demo: DemoSite, ready: Any) -> None:
    """One of `ob-serve --workers N` (a spawned process): a backend of its own, attached to the shared store
    before the first request, and an HTTP server on the listening socket it was handed."""
    from openbrain.aws.backend import get_backend

    backend = get_backend()
    websocket = WebSocketApp()
    server = _http_server(limits, demo, websocket)
    parent = os.getppid()

    def watch() -> None:
        """Say when serving; stop (gracefully) if the parent is gone, even killed with SIGKILL."""
        while not server.started and not server.should_exit:
            time.sleep(0.01)
        ready.set()
        while not server.should_exit:
            if os.getppid() != parent:
                server.should_exit = True
            time.sleep(0.5)

    threading.Thread(target=watch, daemon=True).start()
    try:
        server.run(sockets=[sock])
    finally:
        websocket.close()
        backend.close()


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket on `host:port`, or one line saying why not (a busy port is the usual reason)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        reason = "the port is in use" if exc.errno == errno.EADDRINUSE else exc.strerror or str(exc)
        raise ConfigurationError(f"cannot listen on {host}:{port}: {reason}") from exc
    sock.setblocking(False)
    return sock
