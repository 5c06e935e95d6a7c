"""Starting an embedded backend and installing it as the process's backend for a test."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from openbrain.aws.backend import Backend, set_backend
from openbrain.core.settings import Settings


@contextmanager
def installed_backend(settings: Settings) -> Iterator[Backend]:
    """A started backend from `settings`, installed as the process's backend until the block ends."""
    started = Backend(settings).start()
    previous = set_backend(started)
    try:
        yield started
    finally:
        set_backend(previous)
        started.close()
