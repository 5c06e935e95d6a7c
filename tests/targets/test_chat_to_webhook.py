"""From a real chat turn (offline model) to the client's webhook: the lead the tool captured is the one
the target posts, with the session's profile."""

from __future__ import annotations

from typing import Any

import pytest
from support.targets import WebhookServer, make_client, put_ssm_secret, run_target

from openbrain.aws.backend import Backend
from openbrain.conversation.chat import ChatMessage, chat
from openbrain.storage.orm import AgentConfig, ChatSession, Lead

pytestmark = pytest.mark.integration


def test_a_lead_captured_in_a_chat_turn_reaches_the_webhook_once(
    backend: Backend, webhook: WebhookServer, handler: Any
) -> None:
    from support.targets import verified

    # given
    make_client(webhook.url, put_ssm_secret(backend))
    AgentConfig("acme", "sales", model="offline").save()
    session_id = chat(ChatMessage.parse({"clientId": "acme", "agentConfig": "sales", "reset": True})).session_id

    # when: the offline model calls capture_lead, and the target's queue is polled
    response = chat(ChatMessage(client_id="acme", session_id=session_id,
                                message="My name is Ada Lovelace, email ada@example.com"))
    result = run_target(backend, handler)

    # then
    assert [e["type"] for e in response.events] == ["lead.captured.v1"]
    assert len(result.received) == 1 and result.failed == []
    [request] = webhook.requests
    assert verified(request.body, request.headers)["lead"]["lead_id"] == request.json()["lead"]["lead_id"]
    body = request.json()
    lead_id = ChatSession.get("acme", session_id).lead_id
    assert body["lead"]["lead_id"] == lead_id and body["lead"]["email"] == "ada@example.com"
    assert body["profile_name"] == "sales" and body["session_id"] == session_id
    assert Lead.get("acme", lead_id).status == "delivered"
    assert run_target(backend, handler).received == []
