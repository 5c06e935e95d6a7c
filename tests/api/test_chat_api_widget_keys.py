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


# Every operation the OpenAPI document lists, by what a widget key may do with it (docs/security.md): a route
# added to the API fails this test until it is put on one side.
WIDGET_MAY = {("GET", "/"), ("GET", "/authz"), ("POST", "/chat"), ("GET", "/sessions/{session_id}"),
              ("GET", "/sessions/{session_id}/schedules"), ("DELETE", "/sessions/{session_id}/schedules/{schedule_id}")}
SERVER_ONLY = {  # a valid request of each (validation answers before the key's kind is checked)
    ("GET", "/sessions"): ("/sessions", None),
    ("GET", "/leads"): ("/leads", None),
    ("GET", "/leads/{lead_id}"): ("/leads/01KAAAAAAAAAAAAAAAAAAAAAAA", None),
    ("GET", "/agent-configs"): ("/agent-configs", None),
    ("GET", "/agent-configs/{profile_name}"): ("/agent-configs/bot", None),
    ("PUT", "/agent-configs/{profile_name}"): ("/agent-configs/bot", {"model": "offline"}),
    ("DELETE", "/agent-configs/{profile_name}"): ("/agent-configs/bot", None),
    ("GET", "/limits"): ("/limits", None),
    ("PUT", "/limits"): ("/limits", {"user_per_minute": 1000}),
    ("GET", "/usage"): ("/usage", None),
    ("POST", "/widget-tokens"): ("/widget-tokens", {"userId": "ada"}),
}


def test_every_documented_route_a_widget_key_may_not_use_is_403_and_changes_nothing(widget: Api, acme: Api) -> None:
    documented = {(method.upper(), path) for path, operations in acme.get("/openapi.json").json["paths"].items()
                  for method in operations}
    assert documented == WIDGET_MAY | set(SERVER_ONLY)
    limits, profile = acme.get("/limits").json, acme.get("/agent-configs/bot").json
    for (method, _), (path, body) in SERVER_ONLY.items():
        query = {"userId": "ada"} if path == "/sessions" else None
        response = widget.call(method, path, body, query=query) if body else widget.call(method, path, query=query)
        assert (response.status, response.error["code"]) == (403, "forbidden"), (method, path)
    assert (acme.get("/limits").json, acme.get("/agent-configs/bot").json) == (limits, profile)


def test_the_server_key_still_reads_leads(acme: Api) -> None:
    assert acme.get("/leads").status == 200
