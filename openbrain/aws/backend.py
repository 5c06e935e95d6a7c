"""The composition point: which AWS this process talks to, chosen at run time, never at import.

- `memory`: DynamoDB, EventBridge and SQS of moto, resources created on first use. With a store file
  (`OB_MEMORY_STORE`, the default) they live in the embedded store's process, which every OpenBrain process
  of the user shares and which writes every change to that file before answering
  (`openbrain.aws.embedded_store`); without one (`memory_store=None`: the tests, the bench) in this process,
  gone when it ends. No account, no network beyond loopback. The default outside Lambda.
- `aws`: real AWS, or any compatible endpoint through the standard `AWS_ENDPOINT_URL*` variables.
  The only choice inside Lambda: asking for `memory` there is a `ConfigurationError`, never a silent
  fallback.

Library code takes a `Backend` argument or calls `get_backend()`, which builds one from `Settings()` the
first time it is needed. A started backend's `stores` (`openbrain.storage.stores`) are how services reach
the tables.
"""

from __future__ import annotations

import atexit
import importlib.util
import logging
import threading
from typing import Any

from openbrain.aws.embedded_store import CREDENTIALS, EmbeddedStore, StoreEndpoint
from openbrain.aws.events import EventPublisher
from openbrain.aws.scheduler import EventBridgeScheduler, Scheduler, StoreScheduler
from openbrain.core.errors import ConfigurationError
from openbrain.core.settings import Settings, load_settings
from openbrain.storage.dynamodb import dynamodb_stores
from openbrain.storage.orm import ChatSession, bind_models
from openbrain.storage.stores import Stores

log = logging.getLogger(__name__)

# The in-process AWS answers every client of this process whenever a memory backend without a store is
# started, so those backends share their boto3 clients: building one parses its service model (~70 ms
# each), which a process that starts many backends (the test suite: one per test) would otherwise pay on every start.
_embedded_clients: dict[tuple[str, str], Any] = {}


class Backend:
    """A started backend: bound ORM models, the stores over them, AWS clients, the event publisher, the scheduler."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.kind = settings.resolved_backend
        self._mock: Any = None
        # Its data lives in this process (the embedded backend without a store file): no other process sees it.
        self.in_process = self.kind == "memory" and settings.memory_store is None
        self._clients: dict[tuple[str, str], Any] = _embedded_clients if self.in_process else {}
        self._store: EmbeddedStore | None = None
        self._endpoint: StoreEndpoint | None = None
        self.queue_urls: dict[str, str] = {}
        self._publisher: EventPublisher | None = None

    def start(self) -> Backend:
        try:
            if self.kind == "memory":
                self._start_memory()
            if self._store is not None and self._endpoint is not None:
                bind_models(self.settings, keep_connection=True, host=self._endpoint.url, credentials=CREDENTIALS)
                self._store.attach(ChatSession._get_connection().connection.client)  # the models share it
                self._store.on_restart = self._create_event_resources
            else:
                bind_models(self.settings, keep_connection=self.kind == "memory")
            self.stores: Stores = dynamodb_stores()
            if self.kind == "memory":
                self._create_resources()
        except BaseException:
            self._abandon()
            raise
        return self

    def _abandon(self) -> None:
        """Detach from the store's process, or stop the in-process AWS."""
        if self._store is not None:
            self._store.release()
            self._store = None
            self._endpoint = None
        if self._mock is not None:
            self._mock.stop()
            self._mock = None
        if self._clients is not _embedded_clients:
            self._clients.clear()
        self._publisher = None

    def _start_memory(self) -> None:
        if self.settings.in_lambda:
            raise ConfigurationError(
                "OB_BACKEND=memory is refused inside AWS Lambda: its data would vanish with the "
                "execution environment; use OB_BACKEND=aws (the default in Lambda)"
            )
        if importlib.util.find_spec("moto") is None:  # the store's process needs it too: say so here, in one line
            raise ConfigurationError(
                "the memory backend needs moto: pip install 'openbrain-agents[local]' (or set OB_BACKEND=aws)"
            )
        if self.settings.memory_store is not None:
            self._store = EmbeddedStore(self.settings.memory_store, self.settings.memory_store_idle_seconds)
            self._endpoint = self._store.connect()
            return
        from moto import mock_aws

        self._mock = mock_aws()
        self._mock.start()

    def _create_resources(self) -> None:
        from openbrain.aws.resources import create_tables

        create_tables(self.settings)
        self._create_event_resources()

    def _create_event_resources(self) -> None:
        """The bus, rules and queues (also again when a new store process replaced a dead one: it has none)."""
        from openbrain.aws.resources import create_event_resources

        self.queue_urls = create_event_resources(self.client("events"), self.client("sqs"), self.settings)

    def client(self, service: str) -> Any:
        """A boto3 client for `service` in the configured region (created once, on first use)."""
        key = (service, self.settings.region)
        if key not in self._clients:
            import boto3

            if self._endpoint is None:
                self._clients[key] = boto3.client(service, region_name=self.settings.region)
            else:
                assert self._store is not None
                self._clients[key] = self._store.attach(boto3.client(
                    service, region_name=self.settings.region, endpoint_url=self._endpoint.url, **CREDENTIALS))
        return self._clients[key]

    @property
    def events(self) -> EventPublisher:
        if self._publisher is None:
            self._publisher = EventPublisher(self.client("events"), self.settings.event_bus_name)
        return self._publisher

    @property
    def scheduler(self) -> Scheduler:
        """Where scheduled messages are armed: EventBridge Scheduler for `aws`, nothing for `memory` (ob-serve's
        loop reads the sessions itself). See openbrain/aws/scheduler.py."""
        if self.kind == "memory":
            return StoreScheduler()
        return EventBridgeScheduler.from_settings(self.client("scheduler"), self.settings)

    def close(self) -> None:
        """Detach from the store's process, or stop the in-process AWS (memory)."""
        self._abandon()


_current: Backend | None = None
_lock = threading.Lock()


def get_backend(settings: Settings | None = None) -> Backend:
    """The process's backend, built and started on first use (from `settings` or the environment)."""
    global _current
    with _lock:
        if _current is None:
            backend = Backend(settings or load_settings()).start()
            atexit.register(backend.close)
            _current = backend
        return _current


def set_backend(backend: Backend | None) -> Backend | None:
    """Install `backend` as the process's backend (tests, servers); returns the previous one."""
    global _current
    with _lock:
        previous, _current = _current, backend
        return previous
