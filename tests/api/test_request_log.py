"""The API's one log line per request carries that request's correlation id, client and route template, also when
one process resolves several requests at once (ob-serve's thread pool)."""

from __future__ import annotations

import io
import json
import logging
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from support.api import Api

from openbrain.api.observability import logger
from openbrain.aws.backend import Backend
from openbrain.local.serve import LocalStack

pytestmark = pytest.mark.integration


def _request_lines(output: str) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("message") == "request"]


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    """What the API logger writes, formatted by its own (Powertools) formatter."""
    output = io.StringIO()
    handler = logging.StreamHandler(output)
    handler.setFormatter(logger.registered_formatter)
    logger._logger.addHandler(handler)
    try:
        yield output
    finally:
        logger._logger.removeHandler(handler)


def test_concurrent_requests_log_their_own_client_and_correlation_id(
    acme: Api, globex: Api, log_output: io.StringIO
) -> None:
    def chat(api: Api) -> None:
        for _ in range(5):
            assert api.post("/chat", {"agentConfig": "bot", "message": "what is 6 * 7"}).status == 200

    threads = [threading.Thread(target=chat, args=(api,)) for api in (acme, globex, acme, globex)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    lines = _request_lines(log_output.getvalue())
    assert len(lines) == 20
    assert sorted(str(line["client_id"]) for line in lines) == ["acme"] * 10 + ["globex"] * 10
    assert len({line["correlation_id"] for line in lines}) == 20


def test_each_line_names_the_route_template_that_answered_not_the_ids(
    acme: Api, backend: Backend, log_output: io.StringIO
) -> None:
    # given: ob-serve, which hands the handler API Gateway's `/{proxy+}` resource for every path
    stack = LocalStack(backend, port=0, poll_interval=0.1).start()
    try:
        def call(method: str, path: str, body: bytes | None = None) -> int:
            request = urllib.request.Request(stack.url + path, data=body, method=method, headers={
                "x-api-key": acme.key, "Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    return int(response.status)
            except urllib.error.HTTPError as error:
                return error.code

        # when
        statuses = [call("POST", "/chat", b'{"agentConfig": "bot", "reset": true}'),
                    call("GET", "/sessions/01KAAAAAAAAAAAAAAAAAAAAAAA"),
                    call("HEAD", "/agent-configs/bot"),
                    call("DELETE", "/sessions/01KAAAAAAAAAAAAAAAAAAAAAAA/schedules/01KBBBBBBBBBBBBBBBBBBBBBBB"),
                    call("GET", "/no/such/01KAAAAAAAAAAAAAAAAAAAAAAA")]
    finally:
        stack.stop()

    # then: each line's route is the template of the route that answered (no route for an unknown path)
    lines = _request_lines(log_output.getvalue())
    assert statuses == [200, 404, 200, 404, 404]
    assert [(line["method"], line.get("route"), line["status"]) for line in lines] == [
        ("POST", "/chat", 200), ("GET", "/sessions/{session_id}", 404), ("HEAD", "/agent-configs/{profile_name}", 200),
        ("DELETE", "/sessions/{session_id}/schedules/{schedule_id}", 404), ("GET", None, 404)]
    assert "01KAAAAAAAAAAAAAAAAAAAAAAA" not in log_output.getvalue()
