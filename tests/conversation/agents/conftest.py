"""Fixtures for agent tests: a local OpenAI-compatible server and a backend whose settings point at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.backend import installed_backend
from support.fake_anthropic import FakeAnthropic
from support.fake_openai import TEST_KEY, FakeOpenAI

from openbrain.aws.backend import Backend
from openbrain.core.settings import Settings

_PROXY_ENV = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


@pytest.fixture
def openai_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAI]:
    """A started fake OpenAI server on 127.0.0.1; fails the test if a request found no scripted reply."""
    for name in _PROXY_ENV:  # loopback must not go through a proxy
        monkeypatch.delenv(name, raising=False)
    with FakeOpenAI() as server:
        yield server
        assert server.unscripted == 0, f"{server.unscripted} request(s) found no scripted reply"


@pytest.fixture
def openai_settings(openai_server: FakeOpenAI) -> Settings:
    """Memory backend, no store file, `openai:*` models served by the fake server with a test key."""
    return Settings(
        backend="memory", memory_store=None, openai_base_url=openai_server.base_url, openai_api_key=TEST_KEY
    )


@pytest.fixture
def openai_backend(openai_settings: Settings) -> Iterator[Backend]:
    """A started embedded backend whose `openai:*` models talk to the fake server."""
    with installed_backend(openai_settings) as started:
        yield started


@pytest.fixture
def anthropic_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAnthropic]:
    """A started fake Anthropic Messages API on 127.0.0.1; fails the test if a request found no scripted reply."""
    for name in _PROXY_ENV:
        monkeypatch.delenv(name, raising=False)
    with FakeAnthropic() as server:
        yield server
        assert server.unscripted == 0, f"{server.unscripted} request(s) found no scripted reply"
