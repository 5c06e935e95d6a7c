"""POST /chat with `Idempotency-Key`: a retried request gets the stored reply and runs no second turn."""

from __future__ import annotations

import pytest
from support.api import Api

from openbrain.storage.orm import AgentConfig, ChatSession, Lead

pytestmark = pytest.mark.integration
KEY = "7d4f5c1e-0b2a-4c8e-9f3d-1a2b3c4d5e6f"


def _post(api: Api, body: dict[str, object], key: str = KEY) -> object:
    return api.post("/chat", body, headers={"Idempotency-Key": key})


def test_a_retried_request_gets_the_stored_reply_and_runs_no_second_turn(acme: Api) -> None:
    body = {"agentConfig": "bot", "message": "I'm Ada Lovelace, ada@example.com"}

    first = _post(acme, body)
    again = _post(acme, body)

    assert (first.status, again.status) == (200, 200)
    assert again.json == first.json
    assert (first.header("Idempotent-Replayed"), again.header("Idempotent-Replayed")) == (None, "true")
    [session] = ChatSession.get_all("acme")
    assert (session.session_id, int(session.turn_count)) == (first.json["session_id"], 1)
    assert len(Lead.get_all("acme")) == 1


def test_the_same_key_with_another_body_is_422_and_runs_nothing(acme: Api) -> None:
    first = _post(acme, {"agentConfig": "bot", "message": "hello"})

    other = _post(acme, {"agentConfig": "bot", "message": "something else"})

    assert other.status == 422
    assert other.error["code"] == "idempotency_key_reused"
    assert [int(s.turn_count) for s in ChatSession.get_all("acme")] == [1]
    assert first.status == 200


def test_keys_belong_to_their_client(acme: Api, globex: Api) -> None:
    body = {"agentConfig": "bot", "message": "hello"}

    mine, theirs = _post(acme, body), _post(globex, body)

    assert (mine.status, theirs.status, theirs.header("Idempotent-Replayed")) == (200, 200, None)
    assert theirs.json["client_id"] == "globex" and theirs.json["session_id"] != mine.json["session_id"]


def test_a_failed_request_stores_nothing_so_its_retry_runs(acme: Api) -> None:
    body = {"agentConfig": "later", "message": "hello"}
    assert _post(acme, body).status == 404

    AgentConfig("acme", "later", model="offline").save()
    retried = _post(acme, body)

    assert (retried.status, retried.header("Idempotent-Replayed")) == (200, None)
    assert retried.json["profile_name"] == "later"


@pytest.mark.parametrize("key", ["", "has space", "x" * 256, "ключ"])
def test_a_malformed_key_is_refused_before_anything_runs(acme: Api, key: str) -> None:
    response = _post(acme, {"agentConfig": "bot", "message": "hello"}, key=key)

    assert response.status in (400, 422)
    assert response.error["code"] == "invalid_input"
    assert "idempotency-key" in response.error["message"].lower()
    assert ChatSession.get_all("acme") == []
