"""Widget keys (`obw.`): public in a web page, so they may chat and read their sessions, nothing else."""

from __future__ import annotations

import pytest
from support.api import Api


def test_a_widget_key_chats_and_reads_its_session(widget: Api) -> None:
    started = widget.post("/chat", {"reset": True, "agentConfig": "bot"})
    assert started.status == 200 and started.json["message"] == "Hello from Acme!"
    reply = widget.post("/chat", {"sessionId": started.json["session_id"], "message": "what is 6 * 7"})
    assert reply.status == 200 and reply.json["message"] == "6 * 7 = 42"
    assert widget.get(f"/sessions/{started.json['session_id']}").status == 200
    assert widget.get("/authz").json["client_id"] == "acme"


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/leads"), ("GET", "/leads/01KAAAAAAAAAAAAAAAAAAAAAAA"), ("GET", "/agent-configs"),
    ("GET", "/agent-configs/bot"), ("PUT", "/agent-configs/bot"), ("DELETE", "/agent-configs/bot"),
])
def test_a_widget_key_cannot_read_leads_or_touch_profiles(widget: Api, method: str, path: str) -> None:
    body = {"model": "offline"} if method == "PUT" else None
    response = widget.call(method, path, body) if body else widget.call(method, path)
    assert response.status == 403
    assert response.error["code"] == "forbidden"


def test_the_server_key_still_reads_leads(acme: Api) -> None:
    assert acme.get("/leads").status == 200
