"""GET /sessions/{session_id}, GET /leads and GET /leads/{lead_id}: the caller's own data only."""

from __future__ import annotations

import pytest
from support.api import Api

from openbrain.storage.orm import ChatSession, Lead

pytestmark = pytest.mark.integration

LEAD_MESSAGE = "my name is Ada Lovelace, email ada@example.com"


def start(api: Api, headers: dict[str, str] | None = None) -> str:
    return str(api.post("/chat", {"reset": True, "agentConfig": "bot"}, headers=headers).json["session_id"])


def test_a_session_shows_its_messages_tool_calls_and_state(acme: Api) -> None:
    # given: a session with a calculator turn and a lead
    session_id = start(acme)
    acme.post("/chat", {"sessionId": session_id, "message": "what is (17 + 5) * 3"})
    acme.post("/chat", {"sessionId": session_id, "message": LEAD_MESSAGE})

    # when
    response = acme.get(f"/sessions/{session_id}")

    # then
    assert response.status == 200
    body = response.json
    assert body["session_id"] == session_id
    assert body["client_id"] == "acme"
    assert body["profile_name"] == "bot"
    assert body["turn_count"] == 2
    assert body["ended"] is False
    assert body["lead_id"] == Lead.get_all("acme")[0].lead_id
    assert body["created_at"] <= body["updated_at"]
    messages = body["messages"]
    assert messages[0] == {"role": "assistant", "content": "Hello from Acme!", "tool_calls": [], "tool_call_id": None,
                           "scheduled": False}
    assert body["schedules"] == []
    assert messages[1]["role"] == "user" and messages[1]["content"] == "what is (17 + 5) * 3"
    calls = [call for m in messages for call in m["tool_calls"]]
    assert [call["name"] for call in calls] == ["calculator", "capture_lead"]
    tool_results = [m for m in messages if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in tool_results] == [call["id"] for call in calls]
    assert messages[-1]["role"] == "assistant"


def test_an_ended_session_says_so(acme: Api) -> None:
    session_id = start(acme)
    acme.post("/chat", {"sessionId": session_id, "message": "goodbye"})

    body = acme.get(f"/sessions/{session_id}").json

    assert body["ended"] is True
    assert body["ended_at"] is not None


def test_another_clients_session_is_404(acme: Api, globex: Api) -> None:
    theirs = start(globex)

    response = acme.get(f"/sessions/{theirs}")

    assert response.status == 404
    assert response.error["code"] == "not_found"
    assert "globex" not in response.body


def test_an_unknown_or_impossible_session_is_404(acme: Api) -> None:
    assert acme.get("/sessions/01KAAAAAAAAAAAAAAAAAAAAAAA").status == 404
    assert acme.get("/sessions/" + "x" * 2000).status == 404
    assert acme.get("/sessions/a%20b").status == 404


def test_a_session_not_there_reads_one_way_on_every_route_whoever_it_belongs_to(acme: Api, globex: Api) -> None:
    # given: ids of no session, ids that could name none, globex's session, and one bound to end user ada
    theirs, adas = start(globex), start(acme, {"X-User-Id": "ada"})
    cases = {"01KAAAAAAAAAAAAAAAAAAAAAAA": "01KAAAAAAAAAAAAAAAAAAAAAAA", "%00": "%00", "a%20b": "a%20b",
             "x" * 2000: "x" * 64, theirs: theirs, adas: adas}

    for path_id, named in cases.items():
        headers = {"X-User-Id": "bob"} if path_id == adas else None
        # when: each route that takes a session id
        answers = [acme.get(f"/sessions/{path_id}", headers=headers),
                   acme.get(f"/sessions/{path_id}/schedules", headers=headers),
                   acme.delete(f"/sessions/{path_id}/schedules/01KBBBBBBBBBBBBBBBBBBBBBBB", headers=headers)]
        if "%" not in path_id:
            answers.append(acme.post("/chat", {"sessionId": path_id, "message": "hi"}, headers=headers))

        # then: 404 with docs/api.md's wording, the same for a session of another client or user as for none
        for response in answers:
            assert response.status == 404, response.body
            assert response.error == {"code": "not_found",
                                      "message": f"session {named!r} not found for client 'acme' (or it expired)"}


def test_sessions_need_a_key(acme: Api, anonymous: Api) -> None:
    assert anonymous.get(f"/sessions/{start(acme)}").status == 401


def test_leads_lists_the_clients_leads_newest_first(acme: Api, globex: Api) -> None:
    # given: two leads for acme, one for globex
    for name in ("Ada Lovelace", "Grace Hopper"):
        acme.post("/chat", {"sessionId": start(acme), "message": f"my name is {name}, email x@example.com"})
    globex.post("/chat", {"sessionId": start(globex), "message": LEAD_MESSAGE})

    # when
    response = acme.get("/leads")

    # then
    assert response.status == 200
    leads = response.json["leads"]
    assert [lead["full_name"] for lead in leads] == ["Grace Hopper", "Ada Lovelace"]
    assert {lead["client_id"] for lead in leads} == {"acme"}
    assert leads[0] == Lead.get("acme", leads[0]["lead_id"]).to_public_dict()


def test_a_client_without_leads_gets_an_empty_list(acme: Api) -> None:
    assert acme.get("/leads").json == {"leads": []}


def test_one_lead_by_id(acme: Api) -> None:
    session_id = start(acme)
    acme.post("/chat", {"sessionId": session_id, "message": LEAD_MESSAGE})
    lead_id = ChatSession.get("acme", session_id).lead_id

    response = acme.get(f"/leads/{lead_id}")

    assert response.status == 200
    assert response.json["email"] == "ada@example.com"
    assert response.json["session_id"] == session_id


def test_another_clients_lead_is_404(acme: Api, globex: Api) -> None:
    session_id = start(globex)
    globex.post("/chat", {"sessionId": session_id, "message": LEAD_MESSAGE})
    theirs = ChatSession.get("globex", session_id).lead_id

    response = acme.get(f"/leads/{theirs}")

    assert response.status == 404
    assert "ada" not in response.body.lower()
    assert acme.get("/leads/" + "y" * 5000).status == 404


def test_leads_need_a_key(anonymous: Api, acme: Api) -> None:
    assert anonymous.get("/leads").status == 401
