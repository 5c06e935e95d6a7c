"""Fixtures for the event targets: a live webhook on loopback, a secret in SSM, a client and a lead."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from support.targets import WebhookServer, catch_events, load_handler, make_client, make_lead, put_ssm_secret

from openbrain.aws.backend import Backend
from openbrain.storage.orm import Client, Lead


@pytest.fixture(autouse=True)
def no_proxy_for_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """urllib honours *_PROXY variables: keep the loopback webhook direct."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture
def webhook() -> Iterator[WebhookServer]:
    with WebhookServer() as server:
        yield server


@pytest.fixture
def client(backend: Backend, webhook: WebhookServer) -> Client:
    return make_client(webhook.url, put_ssm_secret(backend))


@pytest.fixture
def lead(backend: Backend, client: Client) -> Lead:
    return make_lead()


@pytest.fixture
def delivered_queue(backend: Backend) -> str:
    return catch_events(backend, "lead.delivered.v1")


@pytest.fixture(scope="session")
def handler() -> Any:
    return load_handler()
