"""Finding the embedded store's process, starting it on first use, and staying attached to it.

The memory backend with a store file (`OB_MEMORY_STORE`) talks to one local process per store file,
`openbrain.aws.store_server`: moto's DynamoDB, EventBridge and SQS on a loopback port, every DynamoDB write on
disk before it is answered. Every OpenBrain process of the user (`ob`, `ob-chat`, `ob-admin`, `ob-tuner`,
`ob-serve`) shares it, in any order and at the same time. A backend:

1. takes a shared lock on `STORE.clients` until it closes (or its process dies), so the store process does not
   stop under it;
2. under an exclusive lock on `STORE.lock` (so two processes never start two store processes), reads
   `STORE.server` (pid, port, token); if no live store process answers there, starts one
   (`python -m openbrain.aws.store_server STORE`, its own session, its errors in `STORE.log`) and waits for
   it to write that file;
3. sends every request to `http://127.0.0.1:PORT` with the token in a header; if the store process is gone
   (killed), the first request that cannot connect starts a new one and is retried there.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit, urlunsplit

from openbrain.aws.store_server import HEALTH_PATH, TOKEN_HEADER, UNREADABLE_EXIT, open_private, sibling
from openbrain.core.errors import ConfigurationError, StoredDataError

log = logging.getLogger(__name__)
LOCK_WAIT_SECONDS = 30.0  # for the start lock, and for a starting store process to answer
# Any values do: the store process checks its token, not AWS signatures. Never the user's own AWS keys.
CREDENTIALS = {"aws_access_key_id": "openbrain-local", "aws_secret_access_key": "openbrain-local"}


@dataclass(frozen=True)
class StoreEndpoint:
    """Where a running store process answers, and the token every request must carry."""

    url: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {TOKEN_HEADER: self.token}


class EmbeddedStore:
    def __init__(self, path: Path, idle_seconds: float | None = None) -> None:
        self.path = path
        self.idle_seconds = idle_seconds
        self._clients: IO[str] | None = None
        self.endpoint: StoreEndpoint | None = None
        self.on_restart: Callable[[], None] | None = None  # after a new store process replaced a dead one
        self._reviving = threading.RLock()

    def connect(self, wait: float = LOCK_WAIT_SECONDS) -> StoreEndpoint:
        """Attach to the store's process, starting it if none runs; its endpoint."""
        try:
            import fcntl
        except ImportError as exc:  # pragma: no cover - Windows
            raise ConfigurationError(
                "the embedded store needs a POSIX system (file locks); on Windows set OB_BACKEND=aws with "
                "AWS_ENDPOINT_URL"
            ) from exc
        clients = open_private(sibling(self.path, ".clients"))  # its lock is held until release
        try:
            _flock(clients, fcntl.LOCK_SH, wait, self.path, "is stopping")
            with open_private(sibling(self.path, ".lock")) as start_lock:
                _flock(start_lock, fcntl.LOCK_EX, wait, self.path, "is being started by another process")
                endpoint = self._running() or self._start(wait)
        except BaseException:
            clients.close()
            raise
        self._clients = clients
        self.endpoint = endpoint
        return endpoint

    def attach(self, client: Any) -> Any:
        """Make `client` (boto3/botocore) send every request to the store process with its token, and start a new
        store process if this one is gone (botocore then retries the request there); returns the client."""
        events = client.meta.events
        for event, handler in (("before-send.*.*", self._sign), ("needs-retry.*.*", self._revive)):
            events.unregister(event, unique_id=f"openbrain-store-{event}")  # a kept connection: the newest store
            events.register_first(event, handler, unique_id=f"openbrain-store-{event}")
        return client

    def _sign(self, request: Any, **_: Any) -> None:
        endpoint = self.endpoint
        if endpoint is None:
            return
        request.headers[TOKEN_HEADER] = endpoint.token
        parts = urlsplit(request.url)
        request.url = urlunsplit(parts._replace(netloc=urlsplit(endpoint.url).netloc))

    def _revive(self, caught_exception: BaseException | None = None, **_: Any) -> None:
        """On a connection error (the store process died): start another, once, under the start lock."""
        from botocore.exceptions import ConnectionError as BotocoreConnectionError

        if not isinstance(caught_exception, BotocoreConnectionError) or self._clients is None:
            return
        import fcntl

        with self._reviving:
            if self.endpoint is not None and _answers(self.endpoint):
                return  # another thread already did, or it was a passing fault
            with open_private(sibling(self.path, ".lock")) as start_lock:
                _flock(start_lock, fcntl.LOCK_EX, LOCK_WAIT_SECONDS, self.path, "is being started by another process")
                self.endpoint = self._running() or self._start(LOCK_WAIT_SECONDS)
            log.warning("the embedded store's process was gone; a new one serves %s", self.path)
            if self.on_restart is not None:
                self.on_restart()

    def release(self) -> None:
        """Detach: the store process stops once nobody is attached and it has been idle a while."""
        if self._clients is not None:
            self._clients.close()
            self._clients = None
        self.endpoint = None

    def _running(self) -> StoreEndpoint | None:
        try:
            state = json.loads(sibling(self.path, ".server").read_text())
            endpoint = StoreEndpoint(f"http://127.0.0.1:{int(state['port'])}", str(state["token"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return endpoint if _answers(endpoint) else None

    def _start(self, wait: float) -> StoreEndpoint:
        state = sibling(self.path, ".server")
        state.unlink(missing_ok=True)  # left by a store process that was killed
        command = [sys.executable, "-m", "openbrain.aws.store_server", str(self.path)]
        if self.idle_seconds is not None:
            command += ["--idle", str(self.idle_seconds)]
        log = sibling(self.path, ".log")
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as errors:
            process = subprocess.Popen(  # noqa: S603 - this Python, this package's module
                command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errors,
                start_new_session=True, close_fds=True)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            endpoint = self._running()
            if endpoint is not None:
                return endpoint
            if process.poll() is not None:
                lines = log.read_text().strip().splitlines()
                reason = lines[-1] if lines else f"exit status {process.returncode}"
                if process.returncode == UNREADABLE_EXIT:
                    raise StoredDataError(reason)
                raise ConfigurationError(f"the embedded store could not start: {reason}")
            time.sleep(0.02)
        process.terminate()
        raise ConfigurationError(f"the embedded store {self.path} did not start within {wait:.0f} s (see {log})")


def _flock(handle: IO[str], mode: int, wait: float, path: Path, why: str) -> None:
    import fcntl

    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(handle.fileno(), mode | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise ConfigurationError(f"the embedded store {path} {why}; try again") from None
            time.sleep(0.02)


def _answers(endpoint: StoreEndpoint) -> bool:
    """Whether a store process answers at `endpoint` and takes its token."""
    request = urllib.request.Request(endpoint.url + HEALTH_PATH, headers=endpoint.headers)  # noqa: S310 - loopback
    try:
        with urllib.request.urlopen(request, timeout=2) as response:  # noqa: S310 - http://127.0.0.1 built above
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False
