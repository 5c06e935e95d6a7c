"""Who is calling: an API key resolves to exactly one Client; which browser origins clients allow.

- `authenticate(clients, api_key)`: one GetItem (the key names its client: `ob.<client_id>.<secret>`),
  then a constant-time hash comparison. Every failure (no key, malformed, unknown client, wrong secret)
  is the same `UnauthorizedError`, so the answer never reveals which clients exist.
- `KnownOrigins.allows(origin, backend)`: for CORS preflights, which carry no API key. It scans the
  clients' `allowed_origins` (a projection, all pages) and keeps the set for `ORIGINS_CACHE_SECONDS` per
  backend in this process, so a newly allowed origin may wait that long for its preflights (actual
  requests check the authenticated client's fresh `allowed_origins`).
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING

from openbrain.core.errors import NotFoundError, UnauthorizedError
from openbrain.storage.orm.client import client_id_of_api_key

if TYPE_CHECKING:
    from openbrain.aws.backend import Backend
    from openbrain.storage.orm.client import Client
    from openbrain.storage.stores import ClientStore

UNAUTHORIZED_MESSAGE = "missing or invalid API key (send it in the x-api-key header)"
ORIGINS_CACHE_SECONDS = 60.0


def authenticate(clients: ClientStore, api_key: str | None) -> Client:
    """The Client that owns `api_key`; `UnauthorizedError` (always the same message) otherwise."""
    client_id = client_id_of_api_key(api_key)
    if client_id is None or api_key is None:
        raise UnauthorizedError(UNAUTHORIZED_MESSAGE)
    try:
        client = clients.get(client_id)
    except NotFoundError:
        raise UnauthorizedError(UNAUTHORIZED_MESSAGE) from None
    if not client.has_api_key(api_key):
        raise UnauthorizedError(UNAUTHORIZED_MESSAGE)
    return client


class KnownOrigins:
    """Every client's allowed origins, re-read at most once per `ttl` seconds for each backend."""

    def __init__(self, ttl: float = ORIGINS_CACHE_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._cache: weakref.WeakKeyDictionary[Backend, tuple[float, frozenset[str]]] = weakref.WeakKeyDictionary()

    def allows(self, origin: str | None, backend: Backend) -> bool:
        if not origin:
            return False
        return origin in self.origins(backend)

    def origins(self, backend: Backend) -> frozenset[str]:
        now = self._clock()
        with self._lock:
            cached = self._cache.get(backend)
            if cached is not None and cached[0] > now:
                return cached[1]
        origins = backend.stores.clients.allowed_origins()
        with self._lock:
            self._cache[backend] = (now + self.ttl, origins)
        return origins


_known_origins = KnownOrigins()


def origin_allowed_by_any_client(origin: str | None, backend: Backend) -> bool:
    """Whether some client of `backend` allows `origin` (cached: see the module docstring)."""
    return _known_origins.allows(origin, backend)
