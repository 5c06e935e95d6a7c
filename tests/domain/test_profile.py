"""The profile schema (openbrain/domain/profile.py): one declaration of a profile's fields, bounds and spellings."""

from __future__ import annotations

import ipaddress
import math
from typing import Any
from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openbrain.core.errors import InvalidInputError
from openbrain.domain.model_spec import BASE_URL_PATTERN
from openbrain.domain.profile import (
    CONFIG_FIELDS,
    DEFAULT_ICEBREAKER,
    DEFAULT_MODEL,
    TOOL_NAMES,
    AgentProfile,
    MemoryPolicy,
)


def test_the_defaults_are_a_valid_profile() -> None:
    profile = AgentProfile()

    assert (profile.model, profile.icebreaker, profile.tools) == (DEFAULT_MODEL, DEFAULT_ICEBREAKER, list(TOOL_NAMES))
    assert profile.memory == MemoryPolicy()
    assert AgentProfile.parse(profile.model_dump()) == profile


def test_config_fields_are_the_schemas_fields_in_order() -> None:
    assert CONFIG_FIELDS == ("system_message", "icebreaker", "model", "temperature", "tools", "max_iterations",
                             "max_execution_time", "base_url", "credentials", "timezone", "memory")


def test_camel_case_and_snake_case_are_both_accepted_and_snake_case_comes_out() -> None:
    camel = AgentProfile.parse({"systemMessage": "s", "iceBreaker": "i", "maxIterations": 3, "maxExecutionTime": 9,
                                "memory": {"windowMessages": 4, "maxStoredMessages": 8}})
    snake = AgentProfile.parse({"system_message": "s", "icebreaker": "i", "max_iterations": 3,
                                "max_execution_time": 9, "memory": {"window_messages": 4, "max_stored_messages": 8}})

    assert camel == snake
    assert set(camel.model_dump()) == set(CONFIG_FIELDS)
    assert camel.model_dump(by_alias=True) == camel.model_dump()  # answers are snake_case, also by alias


def test_normalise_spells_keys_as_fields_and_leaves_unknown_keys_alone() -> None:
    normalised = AgentProfile.normalise({"iceBreaker": "hi", "ice_breaker": "hi", "maxIterations": 2,
                                         "memory": {"windowMessages": 3}, "clientId": "x"})

    assert normalised == {"icebreaker": "hi", "max_iterations": 2, "memory": {"window_messages": 3}, "clientId": "x"}


def test_whole_number_fields_take_whole_floats_as_ints() -> None:
    profile = AgentProfile.parse({"max_iterations": 5.0, "memory": {"window_tokens": 0.0}})

    assert profile.max_iterations == 5 and isinstance(profile.max_iterations, int)
    assert profile.memory.window_tokens == 0 and isinstance(profile.memory.window_tokens, int)
    assert isinstance(AgentProfile.parse({"temperature": 1}).temperature, float)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"temperature": 2.5}, "temperature must be between 0 and 2, got 2.5"),
        ({"temperature": True}, "temperature must be between 0 and 2, got True"),  # a bool is not a number
        ({"temperature": "0.5"}, "temperature must be between 0 and 2, got '0.5'"),  # nor is text
        ({"temperature": math.nan}, "temperature must be between 0 and 2, got nan"),
        ({"max_execution_time": math.inf}, "max_execution_time must be between 1 and 900, got inf"),
        ({"max_iterations": 51}, "max_iterations must be between 1 and 50 (a whole number), got 51"),
        ({"max_iterations": 2.5}, "max_iterations must be a whole number, got 2.5"),
        ({"memory": {"window_tokens": -1}}, "memory.window_tokens must be between 0 and 1000000 (a whole number)"),
        ({"memory": [1]}, "memory must be a mapping of memory policy fields"),
        ({"memory": {"window": 1}}, ("unknown memory field 'window'; allowed: window_messages, window_tokens, "
                                     "max_stored_messages, max_stored_bytes")),
        ({"temprature": 1}, "unknown field 'temprature'; allowed: system_message, icebreaker, model, temperature"),
        ({"tools": ["calculator", "rm_rf"]}, ("unknown tool(s) rm_rf; known tools: calculator, cancel_schedule, "
                                             "capture_lead")),
        ({"timezone": "Mars/Olympus_Mons"}, "timezone must be an IANA time zone such as Europe/London"),
        ({"timezone": "../etc/passwd"}, "timezone must be an IANA time zone"),
        ({"tools": "calculator"}, "tools must be a list of tool names"),
        ({"model": "gpt-4"}, "invalid model spec 'gpt-4': use 'offline' or 'openai:<model>'"),
        ({"model": 4}, "model must be a model spec string"),
        ({"icebreaker": "x" * 20_001}, "icebreaker must be text of at most 20000 characters"),
        ({"system_message": None}, "system_message must be text of at most 20000 characters"),
    ],
    ids=lambda value: repr(value)[:40],
)
def test_bad_values_are_refused_with_a_message_naming_the_field_and_the_rule(values: dict[str, Any],
                                                                            message: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        AgentProfile.parse(values, "profile 'p': ")

    assert caught.value.message.startswith("profile 'p': " + message)


def test_the_json_schema_carries_the_bounds_the_tools_and_the_defaults() -> None:
    schema = AgentProfile.model_json_schema()
    properties, memory = schema["properties"], schema["$defs"]["MemoryPolicy"]["properties"]

    assert (properties["temperature"]["minimum"], properties["temperature"]["maximum"]) == (0, 2)
    assert properties["max_iterations"] == {**properties["max_iterations"], "type": "integer", "minimum": 1,
                                            "maximum": 50, "default": 5}
    assert properties["system_message"]["maxLength"] == 20_000
    assert properties["tools"]["items"]["enum"] == list(TOOL_NAMES)
    assert (memory["max_stored_bytes"]["minimum"], memory["max_stored_bytes"]["maximum"]) == (10_000, 280_000)
    assert schema["additionalProperties"] is False


def test_bounds_are_read_from_the_declaration() -> None:
    assert AgentProfile.bounds("temperature") == (0, 2)
    assert AgentProfile.bounds("max_execution_time") == (1, 900)
    assert MemoryPolicy.bounds("window_messages") == (1, 1000)


# -- a profile's own model connection (docs/models.md) ------------------------------------------------


@pytest.mark.parametrize("url", ["https://llm.example.com/v1", "http://localhost:11434", "http://127.0.0.1:8000/v1",
                                 "http://10.0.3.7:8000/v1", "http://[::1]:8080", ""])
def test_a_base_url_may_be_https_or_http_to_a_local_or_private_host(url: str) -> None:
    assert AgentProfile.parse({"model": "openai:gpt-test", "base_url": url}).base_url == (url or None)


@pytest.mark.parametrize("url", ["http://llm.example.com/v1", "ftp://127.0.0.1/", "https://user:sk-1@host/v1",
                                 "https://host/v1?key=sk-1", "https://host/v1#k", "http://169.254.169.254/latest",
                                 "https://[fe80::1]/", "https://0.0.0.0/", "https://8.8.8.8/", "http://[fd00::1]/",
                                 "https://host:0/", "https://host:65536/", "HTTPS://host/", "not a url"])
def test_a_base_url_elsewhere_or_carrying_a_key_is_refused(url: str) -> None:
    with pytest.raises(InvalidInputError, match="base_url"):
        AgentProfile.parse({"model": "openai:gpt-test", "base_url": url})


@settings(max_examples=300, deadline=None)
@given(st.from_regex(BASE_URL_PATTERN))
def test_every_base_url_the_openapi_pattern_admits_is_accepted_and_reaches_no_public_ip_or_metadata(url: str) -> None:
    accepted = AgentProfile.parse({"model": "openai:gpt-test", "base_url": url}).base_url
    assert accepted == (url.removesuffix("\n") or None)
    if accepted is None:  # "" (or "\n"): no base_url
        return
    parts = urlsplit(accepted)
    assert parts.scheme in ("https", "http") and not (parts.username or parts.password or parts.query or parts.fragment)
    assert parts.hostname and 1 <= (parts.port or 443) <= 65535
    try:
        address = ipaddress.ip_address(parts.hostname)
    except ValueError:  # a host name: only over https, or localhost
        assert parts.scheme == "https" or parts.hostname == "localhost"
    else:
        assert address.is_loopback or address.is_private
        assert not (address.is_link_local or address.is_unspecified or address.is_multicast)


@pytest.mark.parametrize("ref", ["env:OB_MODEL_KEY_ANTHROPIC", "ssm:/openbrain/clients/acme/anthropic-key",
                                 "secretsmanager:openbrain/clients/acme/keys/openai"])
def test_credentials_are_a_reference_of_an_allowed_kind(ref: str) -> None:
    assert AgentProfile.parse({"model": "openai:gpt-test", "credentials": ref}).credentials == ref


@pytest.mark.parametrize("ref", ["sk-live-1234", "env:OPENAI_API_KEY", "env:AWS_SECRET_ACCESS_KEY",
                                 "ssm:/openbrain/dev/openai-api-key", "secretsmanager:arn:aws:secretsmanager:x",
                                 "ssm:/openbrain/clients/acme/../other/key "])
def test_credentials_naming_a_server_secret_or_holding_a_key_are_refused(ref: str) -> None:
    with pytest.raises(InvalidInputError, match="credentials must be"):
        AgentProfile.parse({"model": "openai:gpt-test", "credentials": ref})


@pytest.mark.parametrize(("values", "message"), [
    ({"model": "openai:gpt-test", "base_url": "https://evil.example.com", "credentials": "env:OB_MODEL_KEY_X"},
     "only sent the profile's own credentials"),
    ({"model": "offline", "base_url": "https://llm.example.com"}, "the offline model takes no base_url"),
])
def test_an_operator_key_never_goes_to_a_profile_base_url(values: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        AgentProfile.parse(values)


def test_a_provider_whose_package_is_missing_names_the_extra_to_install() -> None:
    # langchain-groq is not in the dev environment (a test of its own would say so if it were)
    with pytest.raises(InvalidInputError) as caught:
        AgentProfile.parse({"model": "groq:llama-3.3-70b"})

    assert caught.value.message == (
        "model 'groq:llama-3.3-70b' needs the package langchain-groq: pip install 'openbrain-agents[groq]'"
    )

