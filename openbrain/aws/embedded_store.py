"""Keeps the memory backend's tables in a JSON file between processes.

So `ob "hi"` and a later `ob --session ID "..."` see the same data with nothing installed but Python.
One process uses the file at a time: it holds an exclusive lock on `<file>.lock` while its backend is
open (another process waits, then fails with a clear message). Several processes sharing one store
should use a shared DynamoDB-compatible endpoint instead (`OB_BACKEND=aws` + `AWS_ENDPOINT_URL`).
The file holds items in DynamoDB's own JSON (binary values base64-encoded); it is written atomically.
Queues and events are not kept: they are transient in the embedded backend.
"""

from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path
from typing import IO, Any

from botocore.exceptions import BotoCoreError, ClientError

from openbrain.core.errors import ConfigurationError, StoredDataError

FORMAT_VERSION = 1
LOCK_WAIT_SECONDS = 10.0


def _encode(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: (base64.b64encode(v).decode() if k == "B" else
                    [base64.b64encode(b).decode() for b in v] if k == "BS" else _encode(v))
                for k, v in value.items()}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: (base64.b64decode(v) if k == "B" else
                    [base64.b64decode(b) for b in v] if k == "BS" else _decode(v))
                for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


class EmbeddedStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock_file: IO[str] | None = None

    def acquire(self, wait: float = LOCK_WAIT_SECONDS) -> None:
        """Take the store's lock, waiting up to `wait` seconds for another process to release it."""
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locks; one process at a time is then up to the user
            return
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        lock = open(self.path.with_name(self.path.name + ".lock"), "a+")  # noqa: SIM115 - held until release
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    lock.close()
                    raise ConfigurationError(
                        f"the embedded store {self.path} is in use by another OpenBrain process; "
                        "close it, set OB_MEMORY_STORE to another file, or share a DynamoDB endpoint "
                        "(OB_BACKEND=aws with AWS_ENDPOINT_URL)"
                    ) from None
                time.sleep(0.05)
        self._lock_file = lock

    def release(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def load(self, client: Any, table_names: list[str]) -> int:
        """Put every stored item back into the (empty) tables. Returns how many items it loaded."""
        if not self.path.exists():
            return 0
        try:
            document = json.loads(self.path.read_text())
            if document.get("format") != FORMAT_VERSION:
                raise ValueError(f"unknown format {document.get('format')!r}")
            tables = document["tables"]
            if not isinstance(tables, dict) or not all(
                isinstance(items, list) and all(isinstance(item, dict) for item in items) for items in tables.values()
            ):
                raise ValueError("tables must map table names to lists of items")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise StoredDataError(
                f"the embedded store {self.path} is not readable ({exc}); move it away to start afresh"
            ) from exc
        count = 0
        for name in table_names:
            items = [_decode(item) for item in tables.get(name, [])]
            for start in range(0, len(items), 25):
                batch = [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]
                try:
                    client.batch_write_item(RequestItems={name: batch})
                except (BotoCoreError, ClientError) as exc:
                    raise StoredDataError(
                        f"the embedded store {self.path} is not readable (table {name}: {exc}); "
                        "move it away to start afresh"
                    ) from exc
            count += len(items)
        return count

    def save(self, client: Any, table_names: list[str]) -> None:
        """Write every item of the tables to the file, atomically (temp file + rename)."""
        tables: dict[str, list[Any]] = {}
        for name in table_names:
            items: list[Any] = []
            for page in client.get_paginator("scan").paginate(TableName=name):
                items.extend(_encode(item) for item in page["Items"])
            tables[name] = items
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        temp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        # Sessions and leads hold personal data: only the owner may read the file.
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump({"format": FORMAT_VERSION, "tables": tables}, handle, separators=(",", ":"))
            handle.flush()
            os.fsync(handle.fileno())  # the rename must never publish a half-written file
        os.replace(temp, self.path)
