"""The API's one log line per request carries that request's correlation id and client, also when one process
resolves several requests at once (ob-serve's thread pool)."""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Iterator

import pytest
from support.api import Api

from openbrain.api.observability import logger

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
