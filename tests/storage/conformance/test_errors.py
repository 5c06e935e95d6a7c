"""Whatever DynamoDB says, a store raises one of our errors: never PynamoDB's or botocore's (scans too)."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from support.conformance import MISSING_TABLE, Target, on_missing_table

from openbrain.core.errors import UpstreamError
from openbrain.storage.dynamodb import dynamodb_stores
from openbrain.storage.orm import AgentConfig, ChatSession, Client, Lead
from openbrain.storage.stores import Stores

pytestmark = pytest.mark.integration

ID = "01J00000000000000000000000"
# each operation on stores `s` over models `m` (AgentConfig, ChatSession, Lead, Client) bound to a missing table
OPERATIONS: dict[str, Callable[[Stores, Any], Any]] = {
    "profiles.get": lambda s, m: s.profiles.get("acme", "default"),
    "profiles.of_client": lambda s, m: s.profiles.of_client("acme"),
    "profiles.save": lambda s, m: s.profiles.save(m.AgentConfig("acme", "default", model="offline")),
    "sessions.get": lambda s, m: s.sessions.get("acme", ID),
    "sessions.of_client": lambda s, m: s.sessions.of_client("acme", newest_first=True, limit=1),
    "sessions.save": lambda s, m: s.sessions.save(m.ChatSession("acme", profile_name="default")),
    "leads.get": lambda s, m: s.leads.get("acme", ID),
    "leads.of_client": lambda s, m: s.leads.of_client("acme"),
    "leads.delete": lambda s, m: s.leads.delete(m.Lead("acme", ID)),
    "clients.get": lambda s, m: s.clients.get("acme"),
    "clients.all": lambda s, m: s.clients.all(),
    "clients.allowed_origins": lambda s, m: s.clients.allowed_origins(),
    "clients.save": lambda s, m: s.clients.save(m.Client("acme")),
}


@pytest.mark.parametrize("operation", list(OPERATIONS))
def test_a_missing_table_is_an_upstream_error(target: Target, operation: str) -> None:
    # given: stores whose tables do not exist, on the target's endpoint
    models = SimpleNamespace(**{m.__name__: on_missing_table(m) for m in (AgentConfig, ChatSession, Lead, Client)})
    missing = dynamodb_stores(models.AgentConfig, models.ChatSession, models.Lead, models.Client)

    # when
    with pytest.raises(UpstreamError) as raised:
        OPERATIONS[operation](missing, models)

    # then: the message says what failed and DynamoDB's code, never a raw response
    assert raised.value.message.startswith("DynamoDB could not")
    assert "ResourceNotFoundException" in raised.value.message
    assert MISSING_TABLE not in raised.value.message
