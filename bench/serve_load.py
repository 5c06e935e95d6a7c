"""Result 4: load on `ob-serve`: chat turns per second and p50/p99 latency for N concurrent clients.

Starts `ob-serve` (embedded backend, offline model) on a free loopback port, then for each concurrency
runs that many clients for a bounded time; each client starts a session and chats turn after turn.
Part of `python -m bench`; alone:

    python -m bench.serve_load --clients 1 10 50 --seconds 15
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from bench import report

MESSAGES = ["what is 12 * 7", "what time is it in London", "tell me more", "and then?"]


def post(url: str, key: str, body: dict[str, object]) -> dict[str, object]:
    request = urllib.request.Request(url + "/chat", data=json.dumps(body).encode(), method="POST",  # noqa: S310
                                     headers={"content-type": "application/json", "x-api-key": key})
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - loopback only
        return json.loads(response.read())  # type: ignore[no-any-return]


def run(url: str, key: str, clients: int, seconds: float) -> tuple[float, list[float], int]:
    """`clients` threads chatting for `seconds`: (turns per second, latencies, errors)."""
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client() -> None:
        nonlocal errors
        try:
            session = str(post(url, key, {"reset": True})["session_id"])
        except Exception:
            with lock:
                errors += 1
            return
        turn = 0
        while time.monotonic() < deadline:
            started = time.perf_counter()
            try:
                post(url, key, {"sessionId": session, "message": MESSAGES[turn % len(MESSAGES)]})
                with lock:
                    latencies.append(time.perf_counter() - started)
            except Exception:
                with lock:
                    errors += 1
            turn += 1

    threads = [threading.Thread(target=client) for _ in range(clients)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(latencies) / (time.monotonic() - began), latencies, errors


@contextmanager
def ob_serve() -> Iterator[tuple[str, str]]:
    """A fresh `ob-serve` on a free loopback port (own HOME, no store file, no model key): (url, api key)."""
    executable = Path(sys.executable).parent / "ob-serve"
    with tempfile.TemporaryDirectory(prefix="ob-bench-serve-") as home:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OB_", "OPENAI_", "AWS_"))}
        env.update(HOME=home, OB_MEMORY_STORE="none", OB_BACKEND="memory")
        log = Path(home) / "serve.log"
        with log.open("w") as out:
            server = subprocess.Popen([str(executable), "--port", "0"], stdout=out, stderr=subprocess.STDOUT, env=env)  # noqa: S603
        try:
            text = ""
            for _ in range(600):
                text = log.read_text()
                if "api key:" in text or server.poll() is not None:
                    break
                time.sleep(0.1)
            url = re.search(r"serving on (\S+)", text)
            key = re.search(r"api key: (\S+)", text)
            if not (url and key):
                raise RuntimeError(f"ob-serve did not start:\n{text[-2000:]}")
            post(url.group(1), key.group(1), {"message": "warm up"})
            yield url.group(1), key.group(1)
        finally:
            server.terminate()
            server.wait(timeout=30)


def measure(clients: Sequence[int], seconds: float) -> str:
    """A Markdown table: for each concurrency, turns/s, p50 and p99 latency, turns and errors."""
    rows = []
    with ob_serve() as (url, key):
        for count in clients:
            rate, latencies, errors = run(url, key, count, seconds)
            rows.append([count, f"{rate:.1f}", report.ms(report.median(latencies)),
                         report.ms(report.percentile(latencies, 0.99)), len(latencies), errors])
    return report.table(
        f"ob-serve throughput: embedded backend, offline model, {seconds:g} s per concurrency",
        ["concurrent clients", "chat turns/s", "p50 ms", "p99 ms", "turns", "errors"], rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--seconds", type=float, default=15)
    args = parser.parse_args(argv)
    measure(args.clients, args.seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
