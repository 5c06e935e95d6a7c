"""Counts AWS calls and the time spent inside moto's emulated AWS, for every client in the process.

moto's mock answers each botocore request from a `before-send` hook (`BotocoreStubber.process_request`):
everything inside that call is moto's work (parsing the request, running the emulated DynamoDB or S3,
rendering the response) and would be a network round trip plus AWS's own time on the real thing.
Whatever a turn spends outside it is the client's own cost (building the agent, botocore serialising
the request and parsing the response, (de)serialising state) — what a user pays on real DynamoDB, plus
network latency. The hook sees every client (boto3, PynamoDB's own botocore client, resources) because
moto registers it with botocore's built-in handlers.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Meter:
    calls: Counter[str] = field(default_factory=Counter)  # "dynamodb:GetItem", "s3:PUT"
    errors: Counter[str] = field(default_factory=Counter)  # "dynamodb:PutItem ValidationException"
    moto_seconds: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self.lock:
            self.calls.clear()
            self.errors.clear()
            self.moto_seconds = 0.0

    def count(self, service: str) -> int:
        return sum(n for name, n in self.calls.items() if name.startswith(service + ":"))


METER = Meter()


def _operation(request: Any) -> str:
    host = request.url.split("://", 1)[-1].split("/", 1)[0]
    target = request.headers.get("X-Amz-Target")
    if isinstance(target, bytes):
        target = target.decode()
    if "dynamodb" in host:
        return "dynamodb:" + (str(target).rsplit(".", 1)[-1] if target else request.method)
    if ".s3." in host or host.startswith("s3.") or "s3.amazonaws.com" in host:
        return "s3:" + request.method
    return host.split(".", 1)[0] + ":" + (str(target).rsplit(".", 1)[-1] if target else request.method)


@contextmanager
def metering() -> Iterator[Meter]:
    """Count every request moto answers, and the time spent answering it, into `METER`."""
    from moto.core.botocore_stubber import BotocoreStubber

    original = BotocoreStubber.process_request

    def process_request(self: BotocoreStubber, request: Any) -> Any:
        started = time.perf_counter()
        try:
            response = original(self, request)
        finally:
            elapsed = time.perf_counter() - started
        operation = _operation(request)
        with METER.lock:
            METER.moto_seconds += elapsed
            METER.calls[operation] += 1
            if response is not None and response[0] >= 400:
                body = response[2].decode(errors="replace") if isinstance(response[2], bytes) else str(response[2])
                kind = "ValidationException" if "ValidationException" in body else f"HTTP {response[0]}"
                METER.errors[f"{operation} {kind}"] += 1
        return response

    BotocoreStubber.process_request = process_request  # type: ignore[method-assign]
    try:
        yield METER
    finally:
        BotocoreStubber.process_request = original  # type: ignore[method-assign]
