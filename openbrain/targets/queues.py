"""Find a target's definition and its queues' URLs on the running backend."""

from __future__ import annotations

from typing import TYPE_CHECKING

from openbrain.aws.resources import TARGETS, QueueTarget
from openbrain.core.errors import NotFoundError

if TYPE_CHECKING:
    from openbrain.aws.backend import Backend


def target_named(name: str) -> QueueTarget:
    """The target called `name` (`lead-webhook`; `lead_webhook` also matches). `NotFoundError` otherwise."""
    wanted = name.replace("_", "-")
    for target in TARGETS:
        if target.name == wanted:
            return target
    raise NotFoundError(f"no target named {name!r} (known: {', '.join(t.name for t in TARGETS)})")


def queue_url(backend: Backend, queue_name: str) -> str:
    """A queue's URL: from the memory backend's table of created queues, else asked of SQS."""
    if queue_name in backend.queue_urls:
        return backend.queue_urls[queue_name]
    sqs = backend.client("sqs")
    try:
        url = str(sqs.get_queue_url(QueueName=queue_name)["QueueUrl"])
    except sqs.exceptions.QueueDoesNotExist as exc:
        raise NotFoundError(f"queue {queue_name} does not exist (run `ob-admin init`?)") from exc
    backend.queue_urls[queue_name] = url
    return url


def source_queue_url(backend: Backend, target: QueueTarget) -> str:
    return queue_url(backend, target.queue_name(backend.settings))


def dlq_url(backend: Backend, target: QueueTarget) -> str:
    return queue_url(backend, target.dlq_name(backend.settings))
