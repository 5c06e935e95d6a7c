"""Result 4: load on `ob-serve`: chat turns per second and p50/p99 latency for N concurrent clients.

Starts `ob-serve` (embedded backend, offline model) on a free loopback port in each setup (the data in its
process; the store process; two workers), then for each concurrency runs that many clients for a bounded
time; each client starts a session and chats turn after turn. On the last setup, once more with 10 clients
while another client's webhook hangs.
Part of `python -m bench`; alone:

    python -m bench.serve_load --clients 1 10 50 --seconds 15
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench import report

MESSAGES = ["what is 12 * 7", "what time is it in London", "tell me more", "and then?"]


LEAD = "my name is Ada Lovelace, email ada@example.com"  # the offline model captures it as a lead


@dataclass(frozen=True)
class Setup:
    """One way to run `ob-serve`, a table row group."""

    label: str
    options: tuple[str, ...]
    store_file: bool  # the embedded store's process (the default) or the data in ob-serve's process


SETUPS = (
    Setup("1 process, data in it (OB_MEMORY_STORE=none)", (), store_file=False),
    Setup("1 process + the store process (the default)", (), store_file=True),
    Setup("--workers 2 + the store process", ("--workers", "2"), store_file=True),
)


@dataclass(frozen=True)
class Server:
    url: str
    key: str
    store: Path | None


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
def ob_serve(setup: Setup) -> Iterator[Server]:
    """A fresh `ob-serve` on a free loopback port (own HOME and store, no model key), stopped afterwards
    together with its store process."""
    executable = Path(sys.executable).parent / "ob-serve"
    with tempfile.TemporaryDirectory(prefix="ob-bench-serve-") as home:
        store = Path(home) / "store.json" if setup.store_file else None
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OB_", "OPENAI_", "AWS_"))}
        env.update(HOME=home, OB_BACKEND="memory", OB_MEMORY_STORE=str(store or "none"),
                   OB_MEMORY_STORE_IDLE_SECONDS="1")
        log = Path(home) / "serve.log"
        with log.open("w") as out:
            server = subprocess.Popen([str(executable), "--port", "0", *setup.options],  # noqa: S603
                                      stdout=out, stderr=subprocess.STDOUT, env=env)
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
            for _ in range(4):  # every worker's first turn (imports, caches)
                post(url.group(1), key.group(1), {"message": "warm up"})
            yield Server(url.group(1), key.group(1), store)
        finally:
            server.terminate()
            server.wait(timeout=60)
            if store is not None:  # the store process ends once idle; let it, before its folder goes
                state = store.with_name(store.name + ".server")
                for _ in range(150):
                    if not state.exists():
                        break
                    time.sleep(0.1)


@contextmanager
def hung_webhook(server: Server) -> Iterator[list[int]]:
    """Another client, `acme`, whose webhook accepts and never answers, and a visitor of its site leaving a lead
    every second: each lead's delivery hangs until the webhook timeout. Yields a one-item list: the
    deliveries that reached the webhook so far."""
    from openbrain.aws.backend import Backend
    from openbrain.aws.secrets import new_webhook_secret, put_ssm_secret
    from openbrain.core.settings import Settings
    from openbrain.storage.orm import AgentConfig, Client

    assert server.store is not None, "the other client is created through the shared store"
    backend = Backend(Settings(backend="memory", memory_store=server.store)).start()
    hung = socket.socket()
    hung.bind(("127.0.0.1", 0))
    hung.listen(64)
    reached = [0]
    stop = threading.Event()
    threads: list[threading.Thread] = []

    def accept() -> None:
        held = []  # open and unanswered
        hung.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(hung.accept()[0])
                reached[0] += 1
            except TimeoutError:
                continue
        for connection in held:
            connection.close()

    def visitor() -> None:
        while not stop.wait(1.0):
            post(server.url, key, {"message": LEAD})  # a new session each time: a new lead

    try:
        acme = Client("acme", display_name="Acme", webhook_url=f"http://127.0.0.1:{hung.getsockname()[1]}/leads",
                      webhook_secret_ref=put_ssm_secret(backend, "/bench/acme-webhook", new_webhook_secret()))
        key = acme.add_api_key()
        acme.save()
        AgentConfig("acme", "default", model="offline").save()
        threads += [threading.Thread(target=accept, daemon=True), threading.Thread(target=visitor, daemon=True)]
        for thread in threads:
            thread.start()
        time.sleep(2)  # the first deliveries are hanging
        yield reached
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        hung.close()
        backend.close()


def measure(clients: Sequence[int], seconds: float, setups: Sequence[Setup] = SETUPS) -> str:
    """A Markdown table: for each setup and concurrency, turns/s, p50 and p99 latency, turns and errors; then,
    on the last setup, 10 clients while another client's webhook hangs."""
    rows = []
    for setup in setups:
        with ob_serve(setup) as server:
            for count in clients:
                rate, latencies, errors = run(server.url, server.key, count, seconds)
                rows.append([setup.label, count, f"{rate:.1f}", report.ms(report.median(latencies)),
                             report.ms(report.percentile(latencies, 0.99)), len(latencies), errors])
            if setup is setups[-1] and server.store is not None:
                with hung_webhook(server) as reached:
                    rate, latencies, errors = run(server.url, server.key, 10, seconds)
                label = f"{setup.label}, while another client's webhook hangs ({reached[0]} deliveries hanging)"
                rows.append([label, 10, f"{rate:.1f}", report.ms(report.median(latencies)),
                             report.ms(report.percentile(latencies, 0.99)), len(latencies), errors])
    return report.table(
        f"ob-serve throughput: embedded backend, offline model, {seconds:g} s per concurrency",
        ["server", "concurrent clients", "chat turns/s", "p50 ms", "p99 ms", "turns", "errors"], rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--setup", type=int, nargs="+", choices=range(len(SETUPS)), default=range(len(SETUPS)),
                        help="which setups: " + "; ".join(f"{i}: {s.label}" for i, s in enumerate(SETUPS)))
    args = parser.parse_args(argv)
    measure(args.clients, args.seconds, [SETUPS[i] for i in args.setup])
    return 0


if __name__ == "__main__":
    sys.exit(main())
