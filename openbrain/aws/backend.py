"""The composition point: which AWS this process talks to, chosen at run time, never at import.

- `memory`: DynamoDB, EventBridge and SQS in-process (moto), resources created on first use, tables kept
  between processes in `OB_MEMORY_STORE`. No account, no network. The default outside Lambda.
- `aws`: real AWS, or any compatible endpoint through the standard `AWS_ENDPOINT_URL*` variables.
  The only choice inside Lambda: asking for `memory` there is a `ConfigurationError`, never a silent
  fallback.

Library code takes a `Backend` argument or calls `get_backend()`, which builds one from `Settings()` the
first time it is needed. A started backend's `stores` (`openbrain.storage.stores`) are how services reach
the tables.
"""

from __future__ import annotations

import atexit
import logging
import threading
from typing import Any

from openbrain.aws.embedded_store import EmbeddedStore
from openbrain.aws.events import EventPublisher
from openbrain.core.errors import ConfigurationError
from openbrain.core.settings import Settings, load_settings
from openbrain.storage.dynamodb import dynamodb_stores
from openbrain.storage.orm import MODELS, bind_models
from openbrain.storage.stores import Stores

log = logging.getLogger(__name__)

# The embedded AWS answers every client of this process whenever a memory backend is started, so memory
# backends share their boto3 clients: building one parses its service model (~70 ms each), which a process
# that starts many backends (the test suite: one per test) would otherwise pay on every start.
_embedded_clients: dict[tuple[str, str], Any] = {}


class Backend:
    """A started backend: bound ORM models, the stores over them, AWS clients, the event publisher."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.kind = settings.resolved_backend
        self._mock: Any = None
        self._clients: dict[tuple[str, str], Any] = _embedded_clients if self.kind == "memory" else {}
        self._store: EmbeddedStore | None = None
        self.queue_urls: dict[str, str] = {}
        self._publisher: EventPublisher | None = None

    def start(self) -> Backend:
        try:
            if self.kind == "memory":
                self._start_memory()
            bind_models(self.settings, keep_connection=self.kind == "memory")
            self.stores: Stores = dynamodb_stores()
            if self.kind == "memory":
                self._create_resources()
        except BaseException:
            self._abandon()
            raise
        return self

    def _abandon(self) -> None:
        """Release the store and stop the in-process AWS without flushing (after a failed start the
        store file must keep what it had)."""
        if self._store is not None:
            self._store.release()
            self._store = None
        if self._mock is not None:
            self._mock.stop()
            self._mock = None
        if self.kind != "memory":
            self._clients.clear()
        self._publisher = None

    def _start_memory(self) -> None:
        if self.settings.in_lambda:
            raise ConfigurationError(
                "OB_BACKEND=memory is refused inside AWS Lambda: its data would vanish with the "
                "execution environment; use OB_BACKEND=aws (the default in Lambda)"
            )
        try:
            from moto import mock_aws
        except ImportError as exc:
            raise ConfigurationError(
                "the memory backend needs moto: pip install 'openbrain[local]' (or set OB_BACKEND=aws)"
            ) from exc
        if self.settings.memory_store is not None:
            self._store = EmbeddedStore(self.settings.memory_store)
            self._store.acquire()
        self._mock = mock_aws()
        self._mock.start()

    def _create_resources(self) -> None:
        from openbrain.aws.resources import create_event_resources, create_tables

        create_tables(self.settings)
        self.queue_urls = create_event_resources(self.client("events"), self.client("sqs"), self.settings)
        if self._store is not None:
            loaded = self._store.load(self.client("dynamodb"), self._table_names())
            log.debug("loaded %d items from %s", loaded, self._store.path)

    def _table_names(self) -> list[str]:
        return [model.Meta.table_name for model in MODELS]

    def client(self, service: str) -> Any:
        """A boto3 client for `service` in the configured region (created once, on first use)."""
        key = (service, self.settings.region)
        if key not in self._clients:
            import boto3

            self._clients[key] = boto3.client(service, region_name=self.settings.region)
        return self._clients[key]

    @property
    def events(self) -> EventPublisher:
        if self._publisher is None:
            self._publisher = EventPublisher(self.client("events"), self.settings.event_bus_name)
        return self._publisher

    def flush(self) -> None:
        """Write the memory backend's tables to its store file (no-op for aws or without a store)."""
        if self._store is not None and self._mock is not None:
            self._store.save(self.client("dynamodb"), self._table_names())

    def close(self) -> None:
        """Flush, release the store, and stop the in-process AWS (memory)."""
        try:
            self.flush()
        finally:
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
