"""AgentConfig (openbrain/storage/orm/agent_config.py): defaults, validation before save, snapshots, overrides."""

from __future__ import annotations

import json
from typing import Any, cast

import pytest

from openbrain.aws.backend import Backend
from openbrain.conversation.tools.registry import TOOLS
from openbrain.core.errors import ForbiddenError, InvalidInputError, NotFoundError
from openbrain.domain.profile import (
    CONFIG_FIELDS,
    DEFAULT_ICEBREAKER,
    DEFAULT_MODEL,
    DEFAULT_SYSTEM_MESSAGE,
    DEFAULT_TOOLS,
    AgentProfile,
    MemoryPolicy,
)
from openbrain.storage.orm import AgentConfig

pytestmark = pytest.mark.integration


def test_a_new_config_is_the_public_default_profile_with_built_in_defaults() -> None:
    config = AgentConfig()

    assert (config.client_id, config.profile_name) == ("public", "default")
    assert config.model == DEFAULT_MODEL
    assert config.system_message == DEFAULT_SYSTEM_MESSAGE
    assert config.icebreaker == DEFAULT_ICEBREAKER
    assert config.tools == list(DEFAULT_TOOLS)
    assert config.memory.model_dump() == MemoryPolicy().model_dump()
    assert config.validate() is config  # the defaults are themselves valid


def test_the_default_tools_list_is_not_shared_between_instances() -> None:
    first, second = AgentConfig("a"), AgentConfig("b")

    cast(list[str], first.tools).append("calculator")

    assert second.tools == list(DEFAULT_TOOLS)


def test_a_saved_config_round_trips_every_field(backend: Backend) -> None:
    # given
    config = AgentConfig(
        "acme", "support", system_message="Be brief.", icebreaker="Hello!", model="offline", temperature=0.2,
        tools=["calculator"], max_iterations=3, max_execution_time=12,
        memory=MemoryPolicy(window_messages=10, window_tokens=0, max_stored_messages=20, max_stored_bytes=50_000),
    )

    # when
    config.save()
    stored = AgentConfig.get("acme", "support")

    # then
    assert stored.to_snapshot() == config.to_snapshot()


# An invalid policy can only be built unchecked (as a stored item loads): saving it is what refuses it.
unchecked = MemoryPolicy.model_construct

BAD_FIELDS: list[tuple[dict[str, Any], str]] = [
    ({"temperature": -0.1}, "temperature must be between 0 and 2"),
    ({"temperature": 2.01}, "temperature must be between 0 and 2"),
    ({"temperature": "hot"}, "temperature must be between 0 and 2"),
    ({"tools": ["calculator", "web_search"]}, "unknown tool(s) web_search; known tools: "),
    ({"model": "gpt-4"}, "invalid model spec 'gpt-4'"),
    ({"model": "openai:"}, "invalid model spec 'openai:'"),
    ({"model": "nosuch:claude"}, "invalid model spec 'nosuch:claude'"),
    ({"model": ""}, "invalid model spec"),
    ({"max_iterations": 0}, "max_iterations must be between 1 and 50"),
    ({"max_iterations": 51}, "max_iterations must be between 1 and 50"),
    ({"max_iterations": "5"}, "max_iterations must be between 1 and 50"),
    ({"max_iterations": 2.5}, "max_iterations must be"),
    ({"max_execution_time": 0}, "max_execution_time must be between 1 and 900"),
    ({"max_execution_time": 901}, "max_execution_time must be between 1 and 900"),
    ({"profile_name": "has space"}, "profile_name must be 1-64 letters"),
    ({"profile_name": "p" * 65}, "profile_name must be 1-64 letters"),
    ({"system_message": "x" * 20_001}, "system_message must be text of at most 20000 characters"),
    ({"memory": unchecked(window_messages=0)}, "memory.window_messages must be between 1 and 1000"),
    ({"memory": unchecked(window_tokens=-1)}, "memory.window_tokens must be between 0 and 1000000"),
    ({"memory": unchecked(max_stored_messages=1)}, "memory.max_stored_messages must be between 2 and 10000"),
    ({"memory": unchecked(max_stored_bytes=9_999)}, "memory.max_stored_bytes must be between 10000 and 280000"),
    ({"memory": unchecked(max_stored_bytes=280_001)}, "memory.max_stored_bytes must be between 10000 and 280000"),
    ({"memory": unchecked(window_messages=2.5)}, "memory.window_messages must be a whole number"),
]


def test_a_window_larger_than_the_store_is_the_whole_store() -> None:
    policy = MemoryPolicy(window_messages=50, max_stored_messages=40)

    assert (policy.window_messages, policy.max_stored_messages) == (40, 40)


def test_a_temperature_is_kept_to_six_decimal_places() -> None:
    assert AgentProfile(temperature=1e-200).temperature == 0  # DynamoDB stores no number under 1e-130
    assert AgentProfile(temperature=0.86146919665).temperature == 0.861469


def _field_id(case: tuple[dict[str, Any], str]) -> str:
    (name, value), = case[0].items()
    if isinstance(value, MemoryPolicy):
        value = {k: v for k, v in dict(value).items() if v != dict(MemoryPolicy())[k]}
    return f"{name}={value!r}"[:48]


@pytest.mark.parametrize(("fields", "message"), BAD_FIELDS, ids=[_field_id(case) for case in BAD_FIELDS])
def test_an_invalid_config_is_refused_with_a_clear_message_and_not_saved(
    backend: Backend, fields: dict[str, Any], message: str
) -> None:
    # given
    fields = dict(fields)
    config = AgentConfig("acme", fields.pop("profile_name", "support"), **fields)

    # when / then
    with pytest.raises(InvalidInputError) as caught:
        config.save()
    assert message in caught.value.message
    assert AgentConfig.get_all("acme") == []


@pytest.mark.parametrize("temperature", [0, 1, 2, 0.0, 2.0])
def test_temperature_bounds_are_inclusive(backend: Backend, temperature: float) -> None:
    AgentConfig("acme", temperature=temperature).save()

    assert AgentConfig.get("acme", "default").temperature == temperature


def test_an_invalid_edit_of_a_stored_config_leaves_the_stored_item_unchanged(backend: Backend) -> None:
    # given
    AgentConfig("acme", temperature=0.5).save()
    config = AgentConfig.get("acme", "default")

    # when
    config.temperature = 5
    with pytest.raises(InvalidInputError):
        config.save()

    # then
    stored = AgentConfig.get("acme", "default")
    assert stored.temperature == 0.5
    assert stored.version == 1


def test_the_unknown_tool_message_lists_every_known_tool() -> None:
    with pytest.raises(InvalidInputError) as caught:
        AgentConfig(tools=["web_search"]).validate()

    for name in TOOLS:
        assert name in caught.value.message


def test_snapshot_round_trip_keeps_every_config_field() -> None:
    # given
    config = AgentConfig(
        "acme", "sales", system_message="Sell.", icebreaker="Hi", model="openai:gpt-4o", temperature=1.5,
        tools=["capture_lead"], max_iterations=7, max_execution_time=20.5,
        memory=MemoryPolicy(window_messages=12, window_tokens=3000, max_stored_messages=50, max_stored_bytes=90_000),
    )

    # when
    snapshot = config.to_snapshot()
    rebuilt = AgentConfig.from_snapshot(json.loads(json.dumps(snapshot)))

    # then: the snapshot is plain JSON and rebuilding it loses nothing but the (unsaved) version
    assert rebuilt.to_snapshot() == snapshot
    assert snapshot["memory"] == {
        "window_messages": 12, "window_tokens": 3000, "max_stored_messages": 50, "max_stored_bytes": 90_000,
    }
    assert rebuilt.version is None
    assert rebuilt.validate() is rebuilt


def test_a_snapshot_of_a_saved_config_carries_its_version(backend: Backend) -> None:
    config = AgentConfig("acme", model="offline")
    config.save()
    config.save()

    assert config.to_snapshot()["version"] == 2


def test_with_overrides_returns_a_validated_copy_and_leaves_the_original_alone() -> None:
    # given
    config = AgentConfig("acme", "support", temperature=0.7)

    # when
    copy = config.with_overrides(
        {"temperature": 0.1, "model": "offline", "tools": ["calculator"], "memory": {"window_messages": 4}}
    )

    # then
    assert (copy.client_id, copy.profile_name) == ("acme", "support")
    assert (copy.temperature, copy.model, copy.tools) == (0.1, "offline", ["calculator"])
    assert copy.memory.model_dump() == {**MemoryPolicy().model_dump(), "window_messages": 4}  # merged, not replaced
    assert (config.temperature, config.model, config.tools) == (0.7, DEFAULT_MODEL, list(DEFAULT_TOOLS))
    assert config.memory.window_messages == MemoryPolicy().window_messages


def test_with_overrides_accepts_every_allowed_field() -> None:
    overrides = {
        "system_message": "s", "icebreaker": "i", "model": "openai:gpt-test", "temperature": 1, "tools": [],
        "max_iterations": 2, "max_execution_time": 3, "base_url": "http://localhost:8000/v1",
        "credentials": "ssm:/openbrain/clients/public/model-key", "timezone": "Europe/Paris",
        "memory": {"window_tokens": 0},
    }
    assert set(overrides) == set(CONFIG_FIELDS)

    copy = AgentConfig().with_overrides(overrides)

    snapshot = copy.to_snapshot()
    assert {name: snapshot[name] for name in overrides if name != "memory"} == {
        name: value for name, value in overrides.items() if name != "memory"
    }
    assert snapshot["memory"]["window_tokens"] == 0


@pytest.mark.parametrize("field", ["client_id", "profile_name", "version", "created_at", "bogus"])
def test_with_overrides_refuses_fields_outside_the_allow_list(field: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        AgentConfig().with_overrides({field: "x"})

    assert f"cannot override {field}" in caught.value.message
    assert "allowed: system_message, icebreaker, model" in caught.value.message


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"temperature": 3}, "temperature must be between 0 and 2"),
        ({"model": "gpt-4"}, "invalid model spec"),
        ({"tools": ["web_search"]}, "unknown tool(s) web_search"),
        ({"tools": "calculator"}, "tools must be a list"),
        ({"max_iterations": 2.5}, "max_iterations must be"),
        ({"memory": {"window_messages": 0}}, "memory.window_messages must be between"),
        ({"memory": {"bogus": 1}}, "invalid agent config override"),
        ({"memory": 5}, "memory"),
        ({"memory": "window_messages=3"}, "memory"),
    ],
    ids=lambda value: repr(value)[:40],
)
def test_with_overrides_validates_the_result(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        AgentConfig().with_overrides(overrides)

    assert message in caught.value.message


def test_get_or_default_gives_built_in_defaults_for_the_default_profile_when_none_is_stored(
    backend: Backend,
) -> None:
    # when
    config = AgentConfig.get_or_default("acme")

    # then: the defaults, addressed to that client, and nothing written
    assert (config.client_id, config.profile_name) == ("acme", "default")
    assert config.to_snapshot() == AgentConfig("acme").to_snapshot()
    assert config.version is None
    with pytest.raises(NotFoundError):
        AgentConfig.get("acme", "default")


def test_get_or_default_returns_the_stored_default_profile(backend: Backend) -> None:
    AgentConfig("acme", system_message="Stored.").save()

    config = AgentConfig.get_or_default("acme", "default")

    assert config.system_message == "Stored."
    assert config.version == 1


def test_get_or_default_returns_a_stored_named_profile(backend: Backend) -> None:
    AgentConfig("acme", "sales", model="offline").save()

    assert AgentConfig.get_or_default("acme", "sales").model == "offline"


def test_get_or_default_raises_not_found_for_a_missing_named_profile(backend: Backend) -> None:
    AgentConfig("acme").save()  # a default exists; it is not a fallback for other names

    with pytest.raises(NotFoundError, match="profile 'sales' not found for client 'acme'"):
        AgentConfig.get_or_default("acme", "sales")


# The item as the PynamoDB MapAttribute of earlier releases wrote it: existing tables must keep loading.
OLD_ITEM = {
    "client_id": {"S": "acme"}, "profile_name": {"S": "support"}, "system_message": {"S": "Be brief."},
    "icebreaker": {"S": "Hello!"}, "model": {"S": "offline"}, "temperature": {"N": "0.2"},
    "tools": {"L": [{"S": "calculator"}]}, "max_iterations": {"N": "3"}, "max_execution_time": {"N": "12"},
    "memory": {"M": {"window_messages": {"N": "10"}, "window_tokens": {"N": "0"},
                     "max_stored_messages": {"N": "20"}, "max_stored_bytes": {"N": "50000"}}},
    "version": {"N": "4"},
    "created_at": {"S": "2025-01-02T03:04:05.000000+0000"}, "updated_at": {"S": "2025-01-03T03:04:05.000000+0000"},
}


def test_an_item_stored_by_earlier_releases_loads_into_the_schema() -> None:
    config = AgentConfig.from_raw_data(OLD_ITEM)

    assert config.profile() == AgentProfile(
        system_message="Be brief.", icebreaker="Hello!", model="offline", temperature=0.2, tools=["calculator"],
        max_iterations=3, max_execution_time=12,
        memory=MemoryPolicy(window_messages=10, window_tokens=0, max_stored_messages=20, max_stored_bytes=50_000),
    )
    assert config.version == 4


def test_the_stored_item_keeps_its_attribute_names_and_types() -> None:
    item = AgentConfig.from_raw_data(OLD_ITEM).validate().serialize()

    # the old attributes as they were, and the one added since (issue 15's time zone) at its default
    assert item.pop("timezone") == {"S": "UTC"}
    assert {name: set(value) for name, value in item.items()} == {name: set(value) for name, value in OLD_ITEM.items()}
    assert item["memory"] == OLD_ITEM["memory"]
    assert item["tools"] == OLD_ITEM["tools"]


def test_from_profile_and_profile_map_every_field() -> None:
    profile = AgentProfile(model="offline", temperature=1.5, tools=["capture_lead"], max_iterations=7,
                           memory=MemoryPolicy(window_messages=12, max_stored_messages=50))

    config = AgentConfig.from_profile("acme", "sales", profile)

    assert (config.client_id, config.profile_name, config.version) == ("acme", "sales", None)
    assert config.profile() == profile
    assert config.tools is not profile.tools  # the item does not share the profile's lists


def test_a_profile_may_name_only_its_own_clients_secrets(backend: Backend) -> None:
    # given: acme's admin names a secret under another client's prefix
    config = AgentConfig("acme", "p", model="openai:gpt-test", credentials="ssm:/openbrain/clients/globex/key")

    # when / then
    with pytest.raises(ForbiddenError, match="must be under openbrain/clients/acme/"):
        config.save()
    AgentConfig("acme", "q", model="openai:gpt-test", credentials="ssm:/openbrain/clients/acme/key").save()
