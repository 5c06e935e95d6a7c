"""Fixtures: tenants with API keys on the embedded backend, and an `Api` that calls the Lambda handler."""

from __future__ import annotations

import pytest
from support.api import ACME_ORIGIN, GLOBEX_ORIGIN, Api, make_client

from openbrain.aws.backend import Backend
from openbrain.storage.orm import AgentConfig, Client
from openbrain.storage.orm.client import WIDGET


@pytest.fixture
def acme(backend: Backend) -> Api:
    """Client `acme` (allows ACME_ORIGIN) with an offline profile `bot`, and an Api holding its key."""
    _, api_key = make_client("acme", [ACME_ORIGIN])
    AgentConfig("acme", "bot", model="offline", icebreaker="Hello from Acme!").save()
    return Api(api_key)


@pytest.fixture
def globex(backend: Backend) -> Api:
    """Another tenant, `globex` (allows GLOBEX_ORIGIN), with its own offline profile `bot`."""
    _, api_key = make_client("globex", [GLOBEX_ORIGIN])
    AgentConfig("globex", "bot", model="offline", icebreaker="Hello from Globex!").save()
    return Api(api_key)


@pytest.fixture
def anonymous(backend: Backend) -> Api:
    return Api(None)


@pytest.fixture
def widget(acme: Api, backend: Backend) -> Api:
    """acme's widget key (obw.), as an Api."""
    client = Client.get("acme")
    key = client.add_api_key(WIDGET)
    client.save()
    return Api(key)
