"""Bad input is a 4xx with the JSON error shape, stores nothing, and never reaches the database or the model
(issue 12's probes, and generated bodies)."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.api import Api

from openbrain.storage.orm import AgentConfig, ChatSession

pytestmark = pytest.mark.integration

PROBES = {
    "a lone surrogate in the message": ('{"message": "\\ud800"}', 422, "body.message: not valid Unicode"),
    "a lone surrogate in the context": ('{"message": "hi", "context": {"a": "\\udfff"}}', 422, "body.context.a"),
    "a lone surrogate in a context key": ('{"message": "hi", "context": {"\\udfff": 1}}', 422, "(a key)"),
    "a lone surrogate in an override": ('{"reset": true, "agentConfigOverrides": {"icebreaker": "\\ud800"}}', 422,
                                        "body.agentConfigOverrides.icebreaker"),
    "JSON nested 1,000 deep": ('{"message": "hi", "context": ' + "[" * 1000 + "]" * 1000 + "}", 422,
                               "nests deeper than 32"),
    "JSON nested 40 deep": ('{"message": "hi", "context": ' + "[" * 40 + "]" * 40 + "}", 422, "nests deeper"),
    "an integer of 5,000 digits": ('{"message": "hi", "context": {"n": ' + "9" * 5000 + "}}", 422, "5000 characters"),
    "NaN": ('{"message": "hi", "context": {"n": NaN}}', 422, "NaN is not a JSON number"),
    "a string for a boolean": ('{"reset": "yes"}', 422, "body.reset"),
    "an empty sessionId": ('{"sessionId": "", "message": "hi"}', 422, "body.sessionId"),
    "an array body": ("[1, 2]", 422, "body"),
    "a string body": ('"hi"', 422, "body"),
}


@pytest.mark.parametrize(("body", "status", "says"), list(PROBES.values()), ids=list(PROBES))
def test_a_probe_is_a_4xx_naming_what_is_wrong_and_stores_nothing(acme: Api, body: str, status: int, says: str
                                                                   ) -> None:
    response = acme.call("POST", "/chat", raw_body=body)

    assert response.status == status, response.body
    assert says in response.error["message"]
    assert ChatSession.get_all("acme") == []


def test_a_body_that_is_not_utf8_is_400(acme: Api) -> None:
    raw = base64.b64encode(b'{"message": "\xff\xfe"}').decode()

    response = acme.call("POST", "/chat", raw_body=raw, base64_body=True)

    assert (response.status, response.error["code"]) == (400, "invalid_json")
    assert ChatSession.get_all("acme") == []


def test_a_profile_the_database_cannot_store_is_422_not_a_database_error(acme: Api) -> None:
    body = json.dumps({"model": "offline", "systemMessage": "\ud800"})  # json escapes the surrogate as \ud800

    response = acme.call("PUT", "/agent-configs/bot", raw_body=body)

    assert (response.status, response.error["code"]) == (422, "invalid_input")
    assert AgentConfig.get("acme", "bot").system_message != "\ud800"


def test_a_temperature_the_database_cannot_store_is_stored_as_zero(acme: Api) -> None:
    response = acme.call("PUT", "/agent-configs/bot", raw_body='{"model": "offline", "temperature": 1e-200}')

    assert (response.status, response.json["temperature"]) == (200, 0)
    assert AgentConfig.get("acme", "bot").temperature == 0


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.dictionaries(st.sampled_from(["message", "sessionId", "reset", "agentConfig", "context",
                                             "agentConfigOverrides", "clientId", "extra"]), JSON, max_size=5))
def test_no_generated_body_gets_a_5xx(acme: Api, body: dict[str, object]) -> None:
    response = acme.call("POST", "/chat", raw_body=json.dumps(body))

    assert response.status < 500, (body, response.body)
    if response.status >= 400:
        assert set(response.error) == {"code", "message"}


def test_an_unknown_profile_field_is_refused_even_when_null(acme: Api) -> None:
    response = acme.call("PUT", "/agent-configs/bot", raw_body='{"": null, "model": "offline"}')

    assert (response.status, response.error["code"]) == (422, "invalid_input")
