"""A local Anthropic Messages API for tests: real HTTP on 127.0.0.1, scripted replies, as `fake_openai` is for OpenAI.

    with FakeAnthropic() as server:
        server.script(Reply(tool_calls=[ToolCall("calculator", {"expression": "6*7"})]), Reply("42"))
        ChatAnthropic(base_url=server.base_url, api_key="key", model="claude-test").invoke("hi")

It serves `POST /v1/messages` the way Anthropic does, so the real `ChatAnthropic`/`anthropic` client can be tested
without patching: a JSON `message` whose `content` holds a `text` block and/or `tool_use` blocks, `stop_reason`
(`end_turn` or `tool_use`) and `usage`. Scripting (`Reply`, `ToolCall`, `error`, `always`, `delay`) is
`fake_openai`'s. Like Anthropic, the server answers 401 to a request without a key (`x-api-key`, or a bearer token
as the anthropic SDK 2.x sends it; `sent_key`), and 400 to one without
`model`/`max_tokens`, or whose assistant `tool_use` blocks are not answered by `tool_result` blocks in the next user
message, without using a scripted reply. Errors have Anthropic's body (`{"type": "error", "error": {"type":
"rate_limit_error", ...}}`). Streaming is not served (ChatAnthropic's `invoke` does not stream).
"""

from __future__ import annotations

import json
from typing import Any

from support.fake_openai import FakeOpenAI, RecordedRequest, Reply, _Handler

MESSAGES_PATH = "/v1/messages"
TEST_KEY = "test-anthropic-key"

_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error", 529: "overloaded_error"}


def sent_key(request: RecordedRequest) -> str:
    """The key a request carried: `x-api-key`, or a bearer token (what the anthropic SDK 2.x sends)."""
    bearer = request.headers.get("authorization", "")
    return request.headers.get("x-api-key", "").strip() or bearer.removeprefix("Bearer ").strip()


def _error_body(status: int, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": _ERROR_TYPES.get(status, "api_error"), "message": message}}


def conversation_problem(messages: Any) -> str | None:
    """Why Anthropic would refuse these messages with 400 (only the checks tests rely on), or None."""
    if not isinstance(messages, list) or not messages:
        return "messages: at least one message is required"
    pending: set[str] = set()
    for index, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ("user", "assistant"):
            return f"messages.{index}.role: Input should be 'user' or 'assistant'"
        content = message["content"]
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        answered = {block.get("tool_use_id") for block in blocks if block.get("type") == "tool_result"}
        if pending and (role != "user" or not pending <= answered):
            return (f"messages.{index}: `tool_use` ids were found without `tool_result` blocks immediately after: "
                    f"{', '.join(sorted(pending - answered))}")
        pending = {block["id"] for block in blocks if block.get("type") == "tool_use"} if role == "assistant" else set()
    if pending:
        return f"tool_use ids without tool_result blocks: {', '.join(sorted(pending))}"
    return None


class FakeAnthropic(FakeOpenAI):
    """The server and its script. Use as a context manager, or `start()` / `stop()`."""

    @property
    def base_url(self) -> str:
        """What `ChatAnthropic(base_url=...)` takes: the SDK adds `/v1/messages`."""
        return super().base_url.removesuffix("/v1")

    @property
    def message_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == MESSAGES_PATH]

    def message(self, reply: Reply, model: str, request: RecordedRequest) -> dict[str, Any]:
        content: list[dict[str, Any]] = [{"type": "text", "text": reply.content}] if reply.content else []
        content += [{"type": "tool_use", "id": call.id or f"toolu_fake_{self.new_call_id()}", "name": call.name,
                     "input": json.loads(call.arguments_json())} for call in reply.tool_calls]
        words_in = sum(len(json.dumps(m.get("content")).split()) for m in request.messages)
        return {
            "id": f"msg_fake_{self.new_call_id()}", "type": "message", "role": "assistant", "model": model,
            "content": content, "stop_reason": reply.finish_reason or ("tool_use" if reply.tool_calls else "end_turn"),
            "stop_sequence": None,
            "usage": {"input_tokens": words_in, "output_tokens": len((reply.content or "").split()) + 1},
        }


class _AnthropicHandler(_Handler):
    fake: FakeAnthropic

    def do_POST(self) -> None:
        request, body = self._read_json()
        if self.path != MESSAGES_PATH:
            self._json(404, _error_body(404, f"Not found: POST {self.path}"))
            return
        if not sent_key(request):
            self._json(401, _error_body(401, "x-api-key header is required"))
            return
        if not isinstance(body, dict) or not body.get("model") or not isinstance(body.get("max_tokens"), int):
            self._json(400, _error_body(400, "model and max_tokens: Field required"))
            return
        if body.get("stream"):
            self._json(400, _error_body(400, "the fake Anthropic server does not stream"))
            return
        problem = conversation_problem(body.get("messages"))
        if problem:
            self._json(400, _error_body(400, problem))
            return
        reply = self._scripted_reply(request)
        if reply is None:
            return
        try:
            if reply.status != 200:
                self._json(reply.status, _error_body(reply.status, reply.error_message), reply.headers)
            else:
                self._json(200, self.fake.message(reply, body["model"], request), reply.headers)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client timed out and left


FakeAnthropic.handler = _AnthropicHandler
