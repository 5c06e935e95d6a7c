"""A local OpenAI-compatible server for tests: real HTTP on 127.0.0.1, scripted chat completions.

    with FakeOpenAI() as server:
        server.script(Reply(tool_calls=[ToolCall("calculator", {"expression": "6*7"})]), Reply("42"))
        ChatOpenAI(base_url=server.base_url, api_key="key", model="gpt-test").invoke("hi")
        server.requests[0].messages          # what the client sent

It serves `POST /v1/chat/completions` the way OpenAI does, so the real `ChatOpenAI`/`openai` client can
be tested without patching: a JSON `chat.completion` (message content and/or `tool_calls`,
`finish_reason`, `usage`), or with `"stream": true` Server-Sent Events of `chat.completion.chunk`s
(content and tool-call argument deltas, a usage chunk when `stream_options.include_usage`, then
`data: [DONE]`).

Each request takes the next scripted `Reply` (a `Reply`, or a function of the request returning one);
`always()` sets the reply for when the script is used up. A reply can be an HTTP error (`status`) or be
late (`delay`, to provoke a client timeout). Like OpenAI, the server rejects with 401 a request without
a bearer key and with 400 a conversation whose assistant tool calls lack their tool results, without
using a scripted reply. Every request is recorded in `requests`; one that found no reply is also
counted in `unscripted` and answered 500 with `x-should-retry: false`.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

COMPLETIONS_PATH = "/v1/chat/completions"
TEST_KEY = "test-key"  # the API key tests configure; the server accepts any non-empty bearer key


@dataclass(frozen=True)
class ToolCall:
    """One function call the fake model makes; `arguments` may be a dict or the raw JSON string."""

    name: str
    arguments: dict[str, Any] | str = field(default_factory=dict)
    id: str | None = None

    def arguments_json(self) -> str:
        return self.arguments if isinstance(self.arguments, str) else json.dumps(self.arguments)


@dataclass(frozen=True)
class Reply:
    """What the server answers to one request.

    `status` other than 200 makes it an OpenAI-style error body with `error_message`; `raw` is sent as it is
    instead (with `status`, as `text/html`: what a proxy in front of the provider answers). `delay` seconds
    pass before anything is sent. `chunk_size` is how many characters of content or arguments each
    streamed delta carries, `chunk_interval` the seconds between two streamed chunks (a model that takes its time).
    """

    content: str | None = None
    tool_calls: tuple[ToolCall, ...] | list[ToolCall] = ()
    finish_reason: str | None = None
    usage: dict[str, int] | None = None
    status: int = 200
    error_message: str = "the fake server was told to fail"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    chunk_size: int = 4
    chunk_interval: float = 0.0
    raw: bytes | None = None


def error(status: int, message: str | None = None, **kwargs: Any) -> Reply:
    """An error reply. Retryable statuses ask the client to retry after 1 ms, to keep tests quick."""
    headers = {"retry-after-ms": "1", **kwargs.pop("headers", {})}
    return Reply(status=status, error_message=message or f"fake error {status}", headers=headers, **kwargs)


Responder = Reply | Callable[["RecordedRequest"], Reply]


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: Any

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages", [])) if isinstance(self.body, dict) else []

    @property
    def tools(self) -> dict[str, dict[str, Any]]:
        """The function tools offered, by name."""
        tools = self.body.get("tools", []) if isinstance(self.body, dict) else []
        return {tool["function"]["name"]: tool["function"] for tool in tools}

    @property
    def stream(self) -> bool:
        return isinstance(self.body, dict) and bool(self.body.get("stream"))


def _error_body(message: str, kind: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


_ERROR_KINDS = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
}


def conversation_problem(messages: Any) -> str | None:
    """Why OpenAI would refuse these messages with 400 (only the checks tests rely on), or None."""
    if not isinstance(messages, list) or not messages:
        return "'messages' must be a non-empty array"
    pending: set[str] = set()
    answered: set[str] = set()
    for index, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in {"system", "developer", "user", "assistant", "tool"}:
            return f"messages[{index}].role is invalid: {role!r}"
        if role == "tool":
            call_id = message.get("tool_call_id")
            if call_id not in pending:
                return (
                    f"Invalid parameter: messages with role 'tool' must be a response to a preceeding "
                    f"message with 'tool_calls' (messages[{index}].tool_call_id={call_id!r})."
                )
            pending.discard(call_id)
            answered.add(call_id)
            continue
        if pending:
            return (
                "An assistant message with 'tool_calls' must be followed by tool messages responding to "
                f"each 'tool_call_id'. The following tool_call_ids did not have response messages: "
                f"{', '.join(sorted(pending))}"
            )
        if role == "assistant":
            for call in message.get("tool_calls") or []:
                if not isinstance(call.get("function", {}).get("arguments"), str):
                    return f"messages[{index}].tool_calls[].function.arguments must be a string"
                pending.add(call["id"])
    if pending:
        return f"tool_call_ids without response messages: {', '.join(sorted(pending))}"
    return None


class FakeOpenAI:
    """The server and its script. Use as a context manager, or `start()` / `stop()`."""

    handler: type[BaseHTTPRequestHandler]  # set below: what answers the requests (another API in a subclass)

    def __init__(self) -> None:
        self._script: deque[Responder] = deque()
        self._always: Responder | None = None
        self._requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.unscripted = 0
        self.stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> FakeOpenAI:
        handler = type("Handler", (self.handler,), {"fake": self})
        self._httpd = _Server(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-openai", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()  # wakes delayed replies so no handler outlives the test
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        assert self._httpd is not None, "start() the server first"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    # -- scripting -------------------------------------------------------------------------------

    def script(self, *replies: Responder) -> FakeOpenAI:
        """Queue replies; each request takes the next one."""
        with self._lock:
            self._script.extend(replies)
        return self

    def always(self, reply: Responder | None) -> FakeOpenAI:
        """The reply for every request once the script is used up (None: answer 500 'unscripted')."""
        with self._lock:
            self._always = reply
        return self

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def completion_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == COMPLETIONS_PATH]

    def new_call_id(self) -> str:
        return f"call_fake_{next(self._ids)}"

    # -- serving (runs on the server's threads) --------------------------------------------------

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _next_reply(self, request: RecordedRequest) -> Reply:
        with self._lock:
            responder = self._script.popleft() if self._script else self._always
            if responder is None:
                self.unscripted += 1
        if responder is None:
            return Reply(
                status=500, error_message="fake OpenAI server: no scripted reply left",
                headers={"x-should-retry": "false"},
            )
        return responder(request) if callable(responder) else responder

    def completion(self, reply: Reply, model: str, request: RecordedRequest) -> dict[str, Any]:
        calls = self._wire_calls(reply)
        message: dict[str, Any] = {"role": "assistant", "content": reply.content, "refusal": None}
        if calls:
            message["tool_calls"] = calls
        return {
            "id": f"chatcmpl-fake{next(self._ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": _finish(reply)}],
            "usage": reply.usage or _usage(request, reply),
            "system_fingerprint": None,
        }

    def chunks(self, reply: Reply, model: str, request: RecordedRequest) -> Iterator[dict[str, Any]]:
        base = {
            "id": f"chatcmpl-fake{next(self._ids)}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": None,
        }

        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
            return {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]}

        yield chunk({"role": "assistant", "content": ""})
        for piece in _pieces(reply.content or "", reply.chunk_size):
            yield chunk({"content": piece})
        for index, call in enumerate(self._wire_calls(reply)):
            yield chunk({"tool_calls": [{
                "index": index, "id": call["id"], "type": "function",
                "function": {"name": call["function"]["name"], "arguments": ""},
            }]})
            for piece in _pieces(call["function"]["arguments"], reply.chunk_size):
                yield chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
        yield chunk({}, _finish(reply))
        options = request.body.get("stream_options") or {}
        if options.get("include_usage"):
            yield {**base, "choices": [], "usage": reply.usage or _usage(request, reply)}

    def _wire_calls(self, reply: Reply) -> list[dict[str, Any]]:
        return [
            {
                "id": call.id or self.new_call_id(),
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments_json()},
            }
            for call in reply.tool_calls
        ]


def _finish(reply: Reply) -> str:
    return reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop")


def _pieces(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), max(1, size))]


def _usage(request: RecordedRequest, reply: Reply) -> dict[str, int]:
    """Deterministic token counts: words in, words and argument characters / 4 out."""
    prompt = sum(len(str(m.get("content") or "").split()) + 4 for m in request.messages)
    completion = len((reply.content or "").split()) + sum(len(c.arguments_json()) // 4 for c in reply.tool_calls)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (timeout) closes its socket under a late reply; that is expected here.
        pass


class _Handler(BaseHTTPRequestHandler):
    fake: FakeOpenAI
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output (and capsys) clean

    def do_GET(self) -> None:
        self._record(None)
        self._json(404, _error_body(f"Invalid URL (GET {self.path})", "invalid_request_error"))

    def _read_json(self) -> tuple[RecordedRequest, Any]:
        """The request's JSON body (None if it has none or it is not JSON), recorded."""
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        return self._record(body), body

    def _scripted_reply(self, request: RecordedRequest) -> Reply | None:
        """The next scripted reply, after its delay; None if the server stops meanwhile (the request is dropped)."""
        reply = self.fake._next_reply(request)
        if reply.delay and self.fake.stopping.wait(reply.delay):
            self.close_connection = True
            return None
        return reply

    def do_POST(self) -> None:
        request, body = self._read_json()
        if self.path != COMPLETIONS_PATH:
            self._json(404, _error_body(f"Invalid URL (POST {self.path})", "invalid_request_error"))
            return
        if not isinstance(body, dict):
            self._json(400, _error_body("We could not parse the JSON body of your request.", "invalid_request_error"))
            return
        auth = self.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or not auth.removeprefix("Bearer ").strip():
            self._json(401, _error_body("You didn't provide an API key.", "invalid_request_error"))
            return
        if not isinstance(body.get("model"), str) or not body["model"]:
            self._json(400, _error_body("you must provide a model parameter", "invalid_request_error"))
            return
        problem = conversation_problem(body.get("messages"))
        if problem:
            self._json(400, _error_body(problem, "invalid_request_error"))
            return
        reply = self._scripted_reply(request)
        if reply is None:
            return
        try:
            if reply.raw is not None:
                self._send(reply.status, reply.raw, "text/html", reply.headers)
            elif reply.status != 200:
                kind, code = _ERROR_KINDS.get(reply.status, ("server_error", None))
                self._json(reply.status, _error_body(reply.error_message, kind, code), reply.headers)
            elif request.stream:
                self._stream(self.fake.chunks(reply, body["model"], request), reply.headers, reply.chunk_interval)
            else:
                self._json(200, self.fake.completion(reply, body["model"], request), reply.headers)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client timed out and left

    def _record(self, body: Any) -> RecordedRequest:
        request = RecordedRequest(
            method=self.command, path=self.path, headers={k.lower(): v for k, v in self.headers.items()}, body=body
        )
        self.fake._record(request)
        return request

    def _json(self, status: int, document: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(document).encode(), "application/json", headers)

    def _send(self, status: int, data: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(data)))
        self.send_header("x-request-id", f"req_fake_{len(self.fake.requests)}")
        self.send_header("connection", "close")  # no idle keep-alive threads outlive a test
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.close_connection = True
        self.wfile.write(data)

    def _stream(self, chunks: Iterator[dict[str, Any]], headers: dict[str, str], interval: float = 0.0) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream; charset=utf-8")
        self.send_header("cache-control", "no-cache")
        self.send_header("connection", "close")  # the body ends when the connection does
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.close_connection = True
        for number, chunk in enumerate(chunks):
            if number and interval and self.fake.stopping.wait(interval):
                return
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()


FakeOpenAI.handler = _Handler
