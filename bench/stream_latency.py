"""Result 5: streaming: the time to the first token we add, at turn 1 and at turn 500, on `ob-serve`; and the
`post_to_connection` calls a long reply costs on the AWS path.

Starts `ob-serve` (the default setup: embedded backend, offline model) and, for each transport (SSE on
`POST /chat/stream`, the WebSocket on `/ws`), times turns from the moment the request is sent until the first
`token` event is read, on fresh sessions (turn 1) and on a session with 499 turns behind it (turn 500). The
offline model streams with no delay of its own before its first chunk, so all of that time is ours (and the
loopback's). Beside it, in the same run, the peer: the same turns over `POST /chat`, which answers only with
the whole reply (the time a person waited before streaming).

The AWS path: the WebSocket Lambda's handler (`openbrain.api.websocket.handler`) fed the events API Gateway
sends, under moto, with the real `ChatOpenAI` streaming a 500-token reply from the local fake OpenAI server
(tests/support: the same fake the tests use) at a steady pace; each frame out is one `post_to_connection`
call, counted. Part of `python -m bench`; alone:

    python -m bench.stream_latency [--quick]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import time
import urllib.parse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench import report
from bench.serve_load import MESSAGES, SETUPS, Server, ob_serve, post

Turn = Callable[[str, str], float]  # (session id, message) -> seconds to the first token (or the reply)
HISTORY = 500


def sse_first_token(server: Server) -> Turn:
    parts = urllib.parse.urlsplit(server.url)

    def turn(session: str, message: str) -> float:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        body = json.dumps({"sessionId": session, "message": message})
        began = time.perf_counter()
        connection.request("POST", "/chat/stream", body=body,
                           headers={"content-type": "application/json", "x-api-key": server.key})
        response = connection.getresponse()
        first = None
        try:
            for line in response:
                if first is None and line.startswith(b"event: token"):
                    first = time.perf_counter() - began
                if line.startswith(b"event: turn.finished") or line.startswith(b"event: error"):
                    break
        finally:
            connection.close()
        if first is None:
            raise RuntimeError(f"no token over SSE for {message!r}")
        return first

    return turn


def ws_first_token(server: Server) -> tuple[Turn, Callable[[], None]]:
    from websockets.sync.client import connect

    url = server.url.replace("http://", "ws://") + "/ws?" + urllib.parse.urlencode({"key": server.key})
    socket = connect(url, open_timeout=30)
    socket.send(json.dumps({"action": "ack"}))

    def turn(session: str, message: str) -> float:
        began = time.perf_counter()
        socket.send(json.dumps({"action": "chat", "sessionId": session, "message": message}))
        first = None
        while True:
            frame = json.loads(socket.recv(timeout=60))
            if first is None and frame.get("type") == "token":
                first = time.perf_counter() - began
            if frame.get("type") in ("turn.finished", "error"):
                break
        if first is None:
            raise RuntimeError(f"no token over the WebSocket for {message!r}: {frame}")
        return first

    return turn, socket.close


def http_reply(server: Server) -> Turn:
    def turn(session: str, message: str) -> float:
        began = time.perf_counter()
        post(server.url, server.key, {"sessionId": session, "message": message})
        return time.perf_counter() - began

    return turn


def timings(server: Server, turn: Turn, turns: int, history: int) -> list[float]:
    """`turns` timed turns, each on a fresh session (history 0) or all on one session after `history` turns."""
    samples = []
    session = ""
    for n in range(turns):
        if not session or not history:
            session = str(post(server.url, server.key, {"reset": True})["session_id"])
            for h in range(history):
                post(server.url, server.key, {"sessionId": session, "message": MESSAGES[h % len(MESSAGES)]})
        samples.append(turn(session, "what is 12 * 7" if n % 2 else "tell me more"))
    return samples


def measure(turns: int, histories: Sequence[int] = (0, HISTORY - 1)) -> str:
    rows = []
    with ob_serve(SETUPS[1]) as server:
        ws_turn, close = ws_first_token(server)
        try:
            for history in histories:
                peer = timings(server, http_reply(server), turns, history)
                for label, turn in (("SSE `POST /chat/stream`", sse_first_token(server)), ("WebSocket `/ws`", ws_turn)):
                    first = timings(server, turn, turns, history)
                    rows.append([history + 1, label, report.ms(report.median(first)),
                                 report.ms(report.percentile(first, 0.9)), report.ms(report.median(peer)),
                                 report.ratio(report.median(peer), report.median(first)), len(first)])
        finally:
            close()
    return report.table(
        f"Time to the first token on ob-serve (default setup, offline model: no delay of its own), {turns} turns each",
        ["turn", "transport", "first token p50 ms", "p90 ms", "whole reply over POST /chat p50 ms",
         "POST /chat ÷ first token", "turns"], rows)


def added_by_us(turns: int, histories: Sequence[int] = (0, HISTORY - 1)) -> str:
    """A table: the time from a request reaching our code to its first token, less the time inside moto's emulated
    DynamoDB (what a network round trip and AWS's own work would be; bench/meter.py), in process: the WebSocket
    handler (`receive` of a chat frame, as API Gateway's Lambda runs it) and what SSE runs for a request
    (`authorize`, `chat_stream`, `coalesce`), with a widget key (whose turns pass the rate-limit check:
    services/limits.py) and with a server key (whose do not). Offline model (no delay of its own). Beside it,
    the whole turn the same way (to `turn.finished`). At turn 500 the paths take turns on one session that
    has 499 behind it (turns 500 to 500 + 4 x `turns`)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # the tests' fakes
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    from support.apigw_ws import ws_event
    from support.backend import installed_backend

    from bench.meter import metering
    from openbrain.api.streaming import authorize, chat_stream, coalesce
    from openbrain.api.websocket import connect, receive
    from openbrain.conversation.chat import ChatMessage, chat
    from openbrain.core.settings import Settings
    from openbrain.services.chat import ChatCall
    from openbrain.services.clients import set_limits
    from openbrain.storage.orm import AgentConfig, Client
    from openbrain.storage.orm.client import SERVER, WIDGET, parse_api_key

    marks: list[tuple[str, float, float]] = []  # (event type, when, moto seconds so far)

    class Recording:
        def post(self, connection_id: str, frame: dict[str, Any]) -> None:
            marks.append((frame["type"], time.perf_counter(), meter.moto_seconds))

        def close(self, connection_id: str, code: int, reason: str) -> None:
            pass

    def ws_turn(key: str, session: str | None, message: str) -> None:
        connection = f"bench-{time.perf_counter_ns()}="
        connect(ws_event("$connect", connection, query={"key": key}), backend)
        receive(ws_event("$default", connection, json.dumps({"action": "ack"})), backend, socket)
        marks.clear()
        marks.append(("start", time.perf_counter(), meter.moto_seconds))
        frame = {"action": "chat", "message": message, **({"sessionId": session} if session else {})}
        receive(ws_event("$default", connection, json.dumps(frame)), backend, socket)

    def sse_turn(key: str, session: str | None, message: str) -> None:
        marks.clear()
        marks.append(("start", time.perf_counter(), meter.moto_seconds))
        client = authorize(key, None, backend)
        parsed = parse_api_key(key)
        call = ChatCall(end_user="203.0.113.9", key_kind=parsed[0] if parsed else WIDGET)
        body = json.dumps({"message": message, **({"sessionId": session} if session else {})})
        for event in coalesce(chat_stream(client, body, call, backend)):
            marks.append((event["type"], time.perf_counter(), meter.moto_seconds))

    def ours(kind: str) -> float:
        (_, began, moto_began), (_, at, moto_at) = marks[0], next(m for m in marks if m[0] == kind)
        return (at - began) - (moto_at - moto_began)

    rows = []
    socket = Recording()
    with installed_backend(Settings(backend="memory", memory_store=None)) as backend, metering() as meter:
        acme = Client("acme", display_name="Acme", allowed_origins=["https://acme.example"])
        keys = {WIDGET: acme.add_api_key(WIDGET), SERVER: acme.add_api_key(SERVER)}
        acme.save()
        set_limits(backend.stores, "acme", {"user_per_minute": 10**6, "user_burst": 10**6,
                                            "client_per_minute": 10**6, "turns_per_day": 10**6,
                                            "turns_per_month": 10**7})
        AgentConfig("acme", "default", model="offline", tools=["calculator"]).save()
        for history in histories:
            session = None
            if history:
                session = chat(ChatMessage(client_id="acme", reset=True)).session_id
                for h in range(history):
                    chat(ChatMessage(client_id="acme", session_id=session, message=MESSAGES[h % len(MESSAGES)]))
            for label, turn in (("WebSocket (handler)", ws_turn), ("SSE (authorize, chat_stream)", sse_turn)):
                for kind in (WIDGET, SERVER):
                    first, whole = [], []
                    for n in range(turns + 2):  # the first two warm the path: not counted
                        turn(keys[kind], session, "tell me more" if n % 2 else "what is 12 * 7")
                        if n >= 2:
                            first.append(ours("token"))
                            whole.append(ours("turn.finished"))
                    rows.append([history + 1, f"{label}, {kind} key", report.ms(report.median(first)),
                                 report.ms(report.percentile(first, 0.9)), report.ms(report.median(whole)), turns])
    return report.table(
        "Time to the first token added by us, in process (moto's time taken out; offline model), "
        f"{turns} turns each",
        ["turn", "path", "first token p50 ms", "p90 ms", "whole turn p50 ms", "turns"], rows)


def aws_posts(tokens: int = 500, intervals: Sequence[float] = (0.002, 0.01)) -> str:
    """A table: `post_to_connection` calls for a reply of `tokens` tokens streamed one every `interval` s,
    against the target of one per 50 ms of streaming plus the control frames: `coalesce` sends the first token
    at once, then at most one per 50 ms, and what the last 50 ms held when the step ends, so a span of S seconds
    from the first token post to the last makes at most S / 0.05 + 2."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # the tests' fakes
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")  # the handler's request logs are not the table
    from support.api import LambdaContext, make_client
    from support.apigw_ws import ENDPOINT, ws_event
    from support.backend import installed_backend
    from support.fake_openai import TEST_KEY, FakeOpenAI, Reply

    from openbrain.api.websocket import ManagementApi, handler
    from openbrain.core.settings import Settings
    from openbrain.storage.orm import AgentConfig

    rows = []
    with FakeOpenAI() as server:
        settings = Settings(backend="memory", memory_store=None, openai_base_url=server.base_url,
                            openai_api_key=TEST_KEY)
        with installed_backend(settings):
            _, key = make_client("acme", ["https://acme.example"])
            AgentConfig("acme", "default", model="openai:gpt-test").save()
            client = ManagementApi(ENDPOINT, "us-east-1").client
            for interval in intervals:
                server.always(Reply("ab" * tokens, chunk_size=2, chunk_interval=interval))
                connection = f"bench-{interval}="
                handler(ws_event("$connect", connection, query={"key": key}), LambdaContext())
                handler(ws_event("$default", connection, json.dumps({"action": "ack"})), LambdaContext())
                posts: list[tuple[float, str]] = []

                def count(params: dict[str, Any], posts: list[tuple[float, str]] = posts, **_: object) -> None:
                    posts.append((time.monotonic(), json.loads(params["Data"])["type"]))

                client.meta.events.register("provide-client-params.apigatewaymanagementapi.PostToConnection",
                                            count, "bench")
                try:
                    handler(ws_event("$default", connection, json.dumps({"action": "chat", "message": "a story"})),
                            LambdaContext())
                finally:
                    client.meta.events.unregister("provide-client-params.apigatewaymanagementapi.PostToConnection",
                                                  unique_id="bench")
                token_times = [at for at, kind in posts if kind == "token"]
                streaming = token_times[-1] - token_times[0] if token_times else 0.0
                control = len(posts) - len(token_times)
                target = streaming / 0.05 + 2  # the first at once, one per 50 ms, the last pieces as the step ends
                rows.append([tokens, f"{interval * 1000:g}", f"{streaming:.2f}", len(token_times), control,
                             f"{target:.0f}", "yes" if len(token_times) <= target else "no"])
    return report.table(
        "post_to_connection calls per reply on the AWS path (the WebSocket Lambda's handler under moto, the real "
        "ChatOpenAI against the fake OpenAI server)",
        ["reply tokens", "ms between tokens", "streaming s", "token posts", "control posts",
         "target: streaming / 50 ms + 2", "within"], rows)


def run(*, quick: bool = False) -> None:
    """The three tables: in process, on ob-serve, the AWS path's posts (`quick`: few turns, turn 21 for 500)."""
    turns, histories = (3, (0, 20)) if quick else (20, (0, HISTORY - 1))
    added_by_us(turns, histories)
    measure(turns, histories)
    aws_posts(intervals=(0.002,) if quick else (0.002, 0.01))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 3 turns each, turn 21 instead of 500")
    args = parser.parse_args(argv)
    run(quick=args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
