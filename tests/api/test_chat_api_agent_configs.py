"""GET /agent-configs, GET|PUT|DELETE /agent-configs/{profile_name}: a client's own profiles, with versions."""

from __future__ import annotations

from typing import Any

import pytest
from support.api import Api

from openbrain.domain.profile import DEFAULT_ICEBREAKER
from openbrain.storage.orm import AgentConfig

pytestmark = pytest.mark.integration

PROFILE: dict[str, Any] = {
    "systemMessage": "You sell anvils.",
    "iceBreaker": "Need an anvil?",
    "model": "offline",
    "temperature": 0.2,
    "tools": ["calculator"],
    "maxIterations": 3,
    "maxExecutionTime": 10,
    "memory": {"windowMessages": 10, "max_stored_messages": 100},
}


def test_list_shows_only_the_clients_stored_profiles(acme: Api, globex: Api) -> None:
    response = acme.get("/agent-configs")

    assert response.status == 200
    configs = response.json["agent_configs"]
    assert [(c["client_id"], c["profile_name"]) for c in configs] == [("acme", "bot")]
    assert configs[0]["icebreaker"] == "Hello from Acme!"
    assert configs[0]["version"] == 1


def test_get_one_profile(acme: Api) -> None:
    response = acme.get("/agent-configs/bot")

    assert response.status == 200
    assert response.json["model"] == "offline"
    assert response.json["memory"]["window_messages"] == 40


def test_the_default_profile_answers_with_built_in_defaults_until_stored(acme: Api) -> None:
    body = acme.get("/agent-configs/default").json

    assert body["icebreaker"] == DEFAULT_ICEBREAKER
    assert body["version"] is None
    assert body["created_at"] is None


def test_put_creates_a_profile_from_camel_case_and_the_chat_uses_it(acme: Api) -> None:
    response = acme.put("/agent-configs/anvils", PROFILE)

    assert response.status == 201
    body = response.json
    assert body["client_id"] == "acme"
    assert body["system_message"] == "You sell anvils."
    assert body["icebreaker"] == "Need an anvil?"
    assert body["memory"] == {"window_messages": 10, "window_tokens": 8000, "max_stored_messages": 100,
                              "max_stored_bytes": 200000}
    assert body["version"] == 1
    assert AgentConfig.get("acme", "anvils").tools == ["calculator"]
    assert acme.post("/chat", {"reset": True, "agentConfig": "anvils"}).json["message"] == "Need an anvil?"


def test_put_replaces_the_whole_profile_and_keeps_created_at(acme: Api) -> None:
    created = acme.put("/agent-configs/anvils", PROFILE).json

    response = acme.put("/agent-configs/anvils", {"model": "offline", "icebreaker": "Anvils again?"})

    assert response.status == 200
    body = response.json
    assert body["icebreaker"] == "Anvils again?"
    assert body["tools"] == AgentConfig("acme", "x").tools  # left out: back to the default
    assert body["version"] == 2
    assert body["created_at"] == created["created_at"]


def test_put_with_the_current_version_succeeds_and_a_stale_one_is_409(acme: Api) -> None:
    acme.put("/agent-configs/anvils", PROFILE)

    fresh = acme.put("/agent-configs/anvils", {**PROFILE, "temperature": 0.5, "version": 1})
    stale = acme.put("/agent-configs/anvils", {**PROFILE, "temperature": 0.9, "version": 1})

    assert fresh.status == 200 and fresh.json["version"] == 2
    assert stale.status == 409
    assert stale.error["code"] == "conflict"
    assert float(AgentConfig.get("acme", "anvils").temperature) == 0.5


def test_a_get_body_can_be_put_back(acme: Api) -> None:
    current = acme.get("/agent-configs/bot").json

    response = acme.put("/agent-configs/bot", {**current, "icebreaker": "Edited"})

    assert response.status == 200
    assert response.json["version"] == current["version"] + 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"temperature": 5}, "temperature"),
        ({"temperature": "hot"}, "temperature"),
        ({"tools": ["rm_rf"]}, "rm_rf"),
        ({"tools": "calculator"}, "tools"),
        ({"model": "nonsense:model"}, "model"),
        ({"maxIterations": 0}, "max_iterations"),
        ({"max_iterations": 2.5}, "max_iterations"),
        ({"memory": {"windowMessages": 0}}, "window_messages"),
        ({"memory": {"bogus": 1}}, "bogus"),
        ({"unknownField": 1}, "unknownField"),
        ({"systemMessage": "x" * 20_001}, "system_message"),
        ({"profileName": "other"}, "profile_name"),
    ],
)
def test_invalid_profiles_are_422_naming_the_field(acme: Api, body: dict[str, Any], field: str) -> None:
    response = acme.put("/agent-configs/anvils", body)

    assert response.status == 422, response.body
    assert response.error["code"] == "invalid_input"
    assert field in response.error["message"]
    assert AgentConfig.get_all("acme") != [] and all(c.profile_name != "anvils" for c in AgentConfig.get_all("acme"))


@pytest.mark.parametrize("name", ["has space", "dots.dots", "x" * 65])
def test_an_invalid_profile_name_cannot_be_stored(acme: Api, name: str) -> None:
    response = acme.put(f"/agent-configs/{name}", {"model": "offline"})

    assert response.status in (404, 422)
    assert response.status != 500


def test_put_with_another_clients_id_is_forbidden(acme: Api, globex: Api) -> None:
    response = acme.put("/agent-configs/bot", {"clientId": "globex", "model": "offline"})

    assert response.status == 403
    assert AgentConfig.get("globex", "bot").icebreaker == "Hello from Globex!"


def test_put_writes_only_the_callers_profile(acme: Api, globex: Api) -> None:
    acme.put("/agent-configs/bot", {"model": "offline", "icebreaker": "Acme edit"})

    assert AgentConfig.get("globex", "bot").icebreaker == "Hello from Globex!"
    assert AgentConfig.get("acme", "bot").icebreaker == "Acme edit"


def test_another_clients_profile_is_404(acme: Api, globex: Api) -> None:
    AgentConfig("globex", "private", model="offline").save()

    assert acme.get("/agent-configs/private").status == 404
    assert acme.delete("/agent-configs/private").status == 404
    assert AgentConfig.get("globex", "private").profile_name == "private"


def test_delete_removes_the_profile(acme: Api) -> None:
    response = acme.delete("/agent-configs/bot")

    assert response.status == 204
    assert response.body == ""
    assert acme.get("/agent-configs/bot").status == 404
    assert acme.delete("/agent-configs/bot").status == 404


def test_delete_with_a_stale_version_is_409(acme: Api) -> None:
    acme.put("/agent-configs/bot", {"model": "offline"})  # now version 2

    stale = acme.delete("/agent-configs/bot", query={"version": "1"})
    current = acme.delete("/agent-configs/bot", query={"version": "2"})

    assert stale.status == 409
    assert current.status == 204


def test_delete_with_a_non_numeric_version_is_422(acme: Api) -> None:
    assert acme.delete("/agent-configs/bot", query={"version": "latest"}).status == 422


def test_profiles_need_a_key(anonymous: Api, acme: Api) -> None:
    assert anonymous.get("/agent-configs").status == 401
    assert anonymous.put("/agent-configs/bot", {"model": "offline"}).status == 401
    assert anonymous.delete("/agent-configs/bot").status == 401


def test_openapi_shows_the_profile_schemas_bounds(anonymous: Api) -> None:
    schemas = anonymous.get("/openapi.json").json["components"]["schemas"]

    for name in ("AgentConfigBody", "AgentConfigOut"):
        temperature = schemas[name]["properties"]["temperature"]
        assert (temperature["minimum"], temperature["maximum"]) == (0, 2), name
    assert schemas["MemoryPolicy"]["properties"]["window_messages"]["maximum"] == 1000


def test_a_profile_rule_is_named_as_the_library_names_it(acme: Api) -> None:
    response = acme.put("/agent-configs/anvils", {"temperature": 5, "memory": {"windowMessages": 3}})

    assert response.status == 422
    assert response.error["message"] == "temperature must be between 0 and 2, got 5"
