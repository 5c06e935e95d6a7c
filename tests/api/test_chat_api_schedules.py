"""Scheduled messages over the HTTPS API (docs/api.md, Scheduled messages): a `dps` message on `POST /chat`,
`GET /sessions/{id}/schedules`, `DELETE /sessions/{id}/schedules/{schedule_id}`, and the three limits of
`PUT /limits`. Refusals are 4xx error bodies that store nothing; one client (or one end user) never sees another's."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from support.api import ACME_ORIGIN, Api

from openbrain.conversation.chat import DPS_MODEL
from openbrain.domain.limits import RateLimits
from openbrain.domain.scheduling import DPS_HELP
from openbrain.storage.orm import ChatSession

pytestmark = pytest.mark.integration

ULID = r"[0-9A-HJKMNP-TV-Z]{26}"
SCHEDULED = re.compile(rf"Its id is ({ULID})")


def start(api: Api, headers: dict[str, str] | None = None) -> str:
    response = api.post("/chat", {"reset": True, "agentConfig": "bot"}, headers=headers)
    assert response.status == 200, response.body
    return str(response.json["session_id"])


def dps(api: Api, session_id: str, command: str, headers: dict[str, str] | None = None) -> str:
    """Send a dps command that must be accepted; the id of what it scheduled."""
    response = api.post("/chat", {"sessionId": session_id, "message": command}, headers=headers)
    assert response.status == 200, response.body
    found = SCHEDULED.search(response.json["message"])
    assert found, response.json["message"]
    return found.group(1)


def stored(session_id: str) -> list[dict[str, object]]:
    return list(ChatSession.get("acme", session_id).schedules or [])


@pytest.mark.parametrize("key", ["server", "widget"])
def test_a_dps_message_on_chat_answers_what_was_scheduled(acme: Api, widget: Api, key: str) -> None:
    # given
    api = acme if key == "server" else widget
    session_id = start(api)

    # when
    response = api.post("/chat", {"sessionId": session_id, "message": "dps user in 2 hours\n\nStretch!\nThen water."},
                        headers={"Origin": ACME_ORIGIN})

    # then: the confirmation, with the time in the session's zone and the id; no model ran, no turn counted
    assert response.status == 200, response.body
    body = response.json
    [schedule_id] = SCHEDULED.findall(body["message"])
    assert "UTC" in body["message"] and "to you" in body["message"]
    assert body["model"] == DPS_MODEL and body["session_id"] == session_id
    assert [event["type"] for event in body["events"]] == ["message.scheduled.v1"]
    [entry] = stored(session_id)
    assert (entry["id"], entry["recipient"], entry["prompt"], entry["created_by"]) == (
        schedule_id, "user", "Stretch!\nThen water.", "user")
    assert ChatSession.get("acme", session_id).turn_count == 0


def test_a_widget_keys_dps_command_frees_its_sessions_slot_at_once(widget: Api) -> None:
    # given: a widget visitor's dps command (counted like a turn, one at a time per session)
    session_id = start(widget)
    dps(widget, session_id, "dps c in 1 hour\nping")

    # when: the visitor goes straight on in that session
    again = widget.post("/chat", {"sessionId": session_id, "message": "dps help"})
    turn = widget.post("/chat", {"sessionId": session_id, "message": "what is 6*7"})

    # then: neither is refused as a second turn in flight (the command's slot is not left to its lease window)
    assert again.status == 200, again.body
    assert turn.status == 200, turn.body


def test_dps_help_on_chat_explains_the_syntax(acme: Api) -> None:
    response = acme.post("/chat", {"sessionId": start(acme), "message": "dps help"})
    assert response.status == 200 and response.json["message"] == DPS_HELP


@pytest.mark.parametrize(("command", "part"), [
    ("dps someone in 5 minutes\nhi", '"someone" is not a recipient'),
    ("dps c whenever you like\nhi", "whenever you like"),
    ("dps c in 5 minutes", "prompt"),
    ("dps u every 5 minutes\nhi", "15 minutes"),
    ("dps u yesterday at 5pm\nhi", "past"),
])
def test_a_dps_message_not_understood_is_422_naming_the_part_and_stores_nothing(acme: Api, command: str,
                                                                              part: str) -> None:
    # given
    session_id = start(acme)
    version = ChatSession.get("acme", session_id).version

    # when
    response = acme.post("/chat", {"sessionId": session_id, "message": command})

    # then
    assert response.status == 422, response.body
    assert response.error["code"] == "invalid_input"
    assert part in response.error["message"]
    assert ChatSession.get("acme", session_id).version == version
    assert acme.get(f"/sessions/{session_id}/schedules").json["schedules"] == []


def test_over_the_session_limit_is_409_schedule_limit_until_one_is_cancelled(acme: Api) -> None:
    # given: one waiting message per session
    assert acme.put("/limits", {"schedules_per_session": 1}).status == 200
    session_id = start(acme)
    first = dps(acme, session_id, "dps u in 1 hour\none")

    # when
    refused = acme.post("/chat", {"sessionId": session_id, "message": "dps u in 2 hours\ntwo"})

    # then
    assert refused.status == 409
    assert refused.error["code"] == "schedule_limit"
    assert "schedules_per_session" in refused.error["message"]
    assert [entry["id"] for entry in stored(session_id)] == [first]
    # and a cancelled one frees its place
    assert acme.delete(f"/sessions/{session_id}/schedules/{first}").status == 200
    dps(acme, session_id, "dps u in 2 hours\ntwo")


def test_over_the_client_limit_is_409_schedule_limit(acme: Api) -> None:
    acme.put("/limits", {"schedules_per_client": 1})
    dps(acme, start(acme), "dps u in 1 hour\none")
    other = start(acme)

    refused = acme.post("/chat", {"sessionId": other, "message": "dps c in 1 hour\ntwo"})

    assert (refused.status, refused.error["code"]) == (409, "schedule_limit")
    assert "schedules_per_client" in refused.error["message"]
    assert stored(other) == []


def test_a_recurring_message_more_often_than_the_clients_minimum_is_422(acme: Api) -> None:
    acme.put("/limits", {"schedule_min_interval_minutes": 120})
    session_id = start(acme)

    refused = acme.post("/chat", {"sessionId": session_id, "message": "dps c every hour\nping"})

    assert (refused.status, refused.error["code"]) == (422, "invalid_input")
    assert "120 minutes" in refused.error["message"] or "2 hours" in refused.error["message"]
    dps(acme, session_id, "dps c every 2 hours\nping")


@pytest.mark.parametrize("key", ["server", "widget"])
def test_list_then_cancel_a_sessions_scheduled_messages(acme: Api, widget: Api, key: str) -> None:
    # given: two messages, the later one scheduled first
    api = acme if key == "server" else widget
    session_id = start(api)
    later = dps(api, session_id, "dps c in 3 hours\nAsk how the walk went")
    sooner = dps(api, session_id, "dps u in 1 hour\nTime for a walk")

    # when
    listed = api.get(f"/sessions/{session_id}/schedules")

    # then: soonest first, as stored
    assert listed.status == 200, listed.body
    body = listed.json
    assert body["session_id"] == session_id
    assert [(s["schedule_id"], s["recipient"], s["prompt"]) for s in body["schedules"]] == [
        (sooner, "user", "Time for a walk"), (later, "chatbot", "Ask how the walk went")]
    first = body["schedules"][0]
    assert (first["time_prompt"], first["timezone"], first["recurring"], first["deliveries"]) == (
        "in 1 hour", "UTC", False, 0)
    assert first["created_by"] == "user" and first["next_at"] < body["schedules"][1]["next_at"]

    # when: one is cancelled
    cancelled = api.delete(f"/sessions/{session_id}/schedules/{sooner}")

    # then: the answer is the cancelled one; it is gone; cancelling it again is 404
    assert cancelled.status == 200, cancelled.body
    assert cancelled.json == body["schedules"][0]
    assert [s["schedule_id"] for s in api.get(f"/sessions/{session_id}/schedules").json["schedules"]] == [later]
    assert [entry["id"] for entry in stored(session_id)] == [later]
    again = api.delete(f"/sessions/{session_id}/schedules/{sooner}")
    assert (again.status, again.error["code"]) == (404, "not_found")
    assert api.get(f"/sessions/{session_id}").json["schedules"][0]["schedule_id"] == later


def test_a_session_without_schedules_lists_none(acme: Api) -> None:
    session_id = start(acme)
    assert acme.get(f"/sessions/{session_id}/schedules").json == {"session_id": session_id, "schedules": []}


@pytest.mark.parametrize(("path", "method"), [
    ("/sessions/01KAAAAAAAAAAAAAAAAAAAAAAA/schedules", "GET"),
    ("/sessions/01KAAAAAAAAAAAAAAAAAAAAAAA/schedules/01KAAAAAAAAAAAAAAAAAAAAAAA", "DELETE"),
    ("/sessions/" + "x" * 2000 + "/schedules", "GET"),
    ("/sessions/a%20b/schedules/01KAAAAAAAAAAAAAAAAAAAAAAA", "DELETE"),
])
def test_an_unknown_or_impossible_session_is_404(acme: Api, path: str, method: str) -> None:
    response = acme.call(method, path)
    assert (response.status, response.error["code"]) == (404, "not_found")


@pytest.mark.parametrize("schedule_id", ["01KAAAAAAAAAAAAAAAAAAAAAAA", "nonsense", "y" * 3000])
def test_an_unknown_or_impossible_schedule_is_404_and_cancels_nothing(acme: Api, schedule_id: str) -> None:
    session_id = start(acme)
    waiting = dps(acme, session_id, "dps u in 1 hour\nhi")

    response = acme.delete(f"/sessions/{session_id}/schedules/{schedule_id}")

    assert (response.status, response.error["code"]) == (404, "not_found")
    assert [entry["id"] for entry in stored(session_id)] == [waiting]


def test_another_clients_key_finds_no_session_and_cancels_nothing(acme: Api, globex: Api) -> None:
    # given: acme's session with a waiting message
    session_id = start(acme)
    waiting = dps(acme, session_id, "dps u in 1 hour\nprivate reminder")

    # when / then: globex's key reads it as missing, on both routes
    listed = globex.get(f"/sessions/{session_id}/schedules")
    cancelled = globex.delete(f"/sessions/{session_id}/schedules/{waiting}")
    for response in (listed, cancelled):
        assert (response.status, response.error["code"]) == (404, "not_found")
        assert "private reminder" not in response.body and "acme" not in response.body
    assert [entry["id"] for entry in stored(session_id)] == [waiting]


def test_a_session_bound_to_an_end_user_is_404_to_anyone_else(acme: Api, widget: Api) -> None:
    # given: ada's session (the server key acts for her), with a waiting message
    ada, bob = {"X-User-Id": "ada"}, {"X-User-Id": "bob"}
    session_id = start(acme, ada)
    waiting = dps(acme, session_id, "dps u in 1 hour\nfor ada", ada)

    # then: bob, and the widget's anonymous visitor, find nothing there, on both routes
    for api, headers in ((acme, bob), (widget, {})):
        assert api.get(f"/sessions/{session_id}/schedules", headers=headers).status == 404
        assert api.delete(f"/sessions/{session_id}/schedules/{waiting}", headers=headers).status == 404
    assert [entry["id"] for entry in stored(session_id)] == [waiting]
    # and ada lists and cancels it
    assert acme.get(f"/sessions/{session_id}/schedules", headers=ada).json["schedules"][0]["prompt"] == "for ada"
    assert acme.delete(f"/sessions/{session_id}/schedules/{waiting}", headers=ada).status == 200


def test_the_schedule_routes_need_a_key(acme: Api, anonymous: Api) -> None:
    session_id = start(acme)
    assert anonymous.get(f"/sessions/{session_id}/schedules").status == 401
    assert anonymous.delete(f"/sessions/{session_id}/schedules/01KAAAAAAAAAAAAAAAAAAAAAAA").status == 401


def test_put_limits_takes_the_three_scheduling_limits(acme: Api) -> None:
    # given
    limits = {"schedules_per_session": 3, "schedules_per_client": 50, "schedule_min_interval_minutes": 60}

    # when
    response = acme.put("/limits", limits)

    # then
    assert response.status == 200, response.body
    assert acme.get("/limits").json == {**RateLimits().model_dump(), **limits}
    defaults = RateLimits()
    assert (defaults.schedules_per_session, defaults.schedules_per_client, defaults.schedule_min_interval_minutes) \
        == (10, 1_000, 15)


@pytest.mark.parametrize("body", [{"schedules_per_session": -1}, {"schedules_per_client": "many"},
                                  {"schedule_min_interval_minutes": 1.5}])
def test_put_limits_refuses_a_scheduling_limit_that_is_not_one(acme: Api, body: dict[str, object]) -> None:
    response = acme.put("/limits", body)
    assert (response.status, response.error["code"]) == (422, "invalid_input")


@pytest.mark.parametrize("command", ["dps u every 5 minutes\nhi", "dps u yesterday at 5pm\nhi", "dps x in 1 hour\nhi"])
def test_a_dps_message_not_understood_starts_no_session(acme: Api, command: str) -> None:
    response = acme.post("/chat", {"agentConfig": "bot", "message": command})

    assert (response.status, response.error["code"]) == (422, "invalid_input")
    assert list(ChatSession.query("acme")) == []


@pytest.mark.parametrize("body", [
    {"agentConfig": "bot", "message": "dps u tomorrow evening\nWater", "timezone": "Mars/Base"},
    {"agentConfig": "bot", "message": "dps u tomorrow evening\nWater", "context": {"timezone": "Mars/Base"}},
    {"reset": True, "context": {"timezone": "Europe/London "}},
    {"message": "hi", "timezone": 5},
])
def test_an_unknown_time_zone_is_refused_naming_it_and_stores_nothing(acme: Api, body: dict[str, object]) -> None:
    # when: a context `timezone` that no IANA zone has (docs/scheduling.md, Time zone)
    response = acme.post("/chat", body)

    # then: refused, naming the field, not read as UTC; no session, no schedule
    assert (response.status, response.error["code"]) == (422, "invalid_input"), response.body
    field = "context.timezone" if "context" in body else "timezone"
    assert response.error["message"].startswith(f"{field} must be an IANA time zone"), response.error
    assert list(ChatSession.query("acme")) == []


def test_an_unknown_time_zone_in_a_sessions_turn_schedules_nothing(acme: Api) -> None:
    session_id = start(acme)

    response = acme.post("/chat", {"sessionId": session_id, "message": "dps u in 1 hour\nhi", "timezone": "Mars/Base"})

    assert (response.status, response.error["code"]) == (422, "invalid_input")
    assert stored(session_id) == []


def test_a_dps_message_may_start_a_session(acme: Api) -> None:
    response = acme.post("/chat", {"agentConfig": "bot", "message": "dps c in 1 hour\nping"})

    assert response.status == 200, response.body
    assert [entry["prompt"] for entry in stored(response.json["session_id"])] == ["ping"]


def _documented() -> list[Any]:
    """The JSON examples of docs/api.md's "Scheduled messages" section: the request, the reply, the list."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text()
    section = text[text.index("### Scheduled messages"):]
    section = section[:section.index("\n## ")]
    return [json.loads(block) for block in re.findall(r"```json\n(.*?)```", section, re.S)]


def _shape(value: Any) -> Any:
    """`value` with every leaf replaced by its type: what a documented example and a real answer share."""
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_shape(item) for item in value[:1]]
    return type(value).__name__


def test_the_examples_in_docs_api_md_are_what_the_api_answers(acme: Api) -> None:
    # given: the documented request, sent in a session started in the documented time zone
    request, reply, listed = _documented()
    started = acme.post("/chat", {"reset": True, "agentConfig": "bot", "context": {"timezone": "Europe/London"}})
    session_id = started.json["session_id"]

    # when
    answered = acme.post("/chat", {**request, "sessionId": session_id})
    schedules = acme.get(f"/sessions/{session_id}/schedules")

    # then: the same fields and kinds of values; the same words, but for the ids
    assert answered.status == 200, answered.body
    assert _shape(answered.json) == _shape(reply)
    schedule_id = answered.json["events"][0]["object_id"]
    assert answered.json["message"].replace(schedule_id, "ID") == reply["message"].replace(
        reply["events"][0]["object_id"], "ID")
    assert _shape(schedules.json) == _shape(listed)
    documented, real = listed["schedules"][0], schedules.json["schedules"][0]
    same = ("recipient", "prompt", "time_prompt", "description", "expression", "timezone", "recurring", "created_by")
    assert {key: real[key] for key in same} == {key: documented[key] for key in same}
