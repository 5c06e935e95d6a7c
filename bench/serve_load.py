"""Load on `ob-serve`: chat turns per second and p50/p99 latency for N concurrent clients.

Starts `ob-serve` (embedded backend, offline model) on a free loopback port, then for each concurrency
runs that many clients for a bounded time; each client starts a session and chats turn after turn.

    python bench/serve_load.py --clients 1 10 --seconds 20
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

MESSAGES = ["what is 12 * 7", "what time is it in London", "tell me more", "and then?"]


def post(url: str, key: str, body: dict[str, object]) -> dict[str, object]:
    request = urllib.request.Request(url + "/chat", data=json.dumps(body).encode(), method="POST",  # noqa: S310
                                     headers={"content-type": "application/json", "x-api-key": key})
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - loopback only
        return json.loads(response.read())  # type: ignore[no-any-return]


def run(url: str, key: str, clients: int, seconds: float) -> tuple[int, list[float], int]:
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
    return round(len(latencies) / (time.monotonic() - began), 1), latencies, errors


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args()
    ob_serve = Path(sys.executable).parent / "ob-serve"
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "HOME": home, "OB_MEMORY_STORE": "none", "OB_BACKEND": "memory"}
        env.pop("OPENAI_API_KEY", None)
        log = Path(home) / "serve.log"
        with log.open("w") as out:
            server = subprocess.Popen([str(ob_serve), "--port", "0"], stdout=out, stderr=subprocess.STDOUT, env=env)  # noqa: S603
        try:
            for _ in range(300):
                text = log.read_text()
                if "api key:" in text:
                    break
                time.sleep(0.1)
            url = re.search(r"serving on (\S+)", text).group(1)  # type: ignore[union-attr]
            key = re.search(r"api key: (\S+)", text).group(1)  # type: ignore[union-attr]
            post(url, key, {"message": "warm up"})
            print(f"{'clients':>7} {'turns/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'turns':>6} {'errors':>6}")
            for clients in args.clients:
                rate, latencies, errors = run(url, key, clients, args.seconds)
                ordered = sorted(latencies)
                p50 = statistics.median(ordered) * 1000
                p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
                print(f"{clients:>7} {rate:>8} {p50:>7.1f} {p99:>7.1f} {len(ordered):>6} {errors:>6}", flush=True)
        finally:
            server.terminate()
            server.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
