"""The embedded store's process in tests: where it runs, and stopping it."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path


def store_pid(store: Path) -> int | None:
    """The pid in the store's state file, if a store process has written one."""
    try:
        return int(json.loads(store.with_name(store.name + ".server").read_text())["pid"])
    except (OSError, ValueError, KeyError):
        return None


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # our own child that exited: reap it, or it stays a zombie and looks alive
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return done == 0


def stop_store(store: Path, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
    """Stop the store's process (SIGTERM: it compacts the journal into the store file first) and wait."""
    pid = store_pid(store)
    if pid is None or not alive(pid):
        return
    os.kill(pid, sig)
    deadline = time.monotonic() + timeout
    while alive(pid):
        if time.monotonic() > deadline:
            raise AssertionError(f"the store process {pid} did not stop")
        time.sleep(0.05)
