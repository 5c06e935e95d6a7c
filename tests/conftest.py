"""Shared fixtures: every test gets a fresh embedded backend (moto) and a clean environment."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from support.backend import installed_backend

from openbrain.aws.backend import Backend
from openbrain.core.settings import Settings

if TYPE_CHECKING:
    from playwright.sync_api import Browser

# Variables that would make a test talk to something other than the in-process AWS or the offline model: these,
# and every `AWS_ENDPOINT_URL*` (boto3 reads `AWS_ENDPOINT_URL_<SERVICE ID>`: ..._EVENTBRIDGE, ..._SECRETS_MANAGER).
_HOSTILE_ENV = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "AWS_LAMBDA_FUNCTION_NAME", "AWS_PROFILE")
_HOSTILE_PREFIXES = ("OB_", "AWS_ENDPOINT_URL")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    for name in list(os.environ):
        if name.startswith(_HOSTILE_PREFIXES) or name in _HOSTILE_ENV:
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path_factory.mktemp("home")))
    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
    # a store process that tests start (through a store file) stops soon after its last process detaches
    monkeypatch.setenv("OB_MEMORY_STORE_IDLE_SECONDS", "5")


@pytest.fixture
def settings() -> Settings:
    """Memory backend, no store file, no model key: nothing leaves the process."""
    return Settings(backend="memory", memory_store=None)


@pytest.fixture
def backend(settings: Settings) -> Iterator[Backend]:
    """A started embedded backend, installed as the process's backend for the test."""
    with installed_backend(settings) as started:
        yield started


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's chromium, headless, for a module's browser tests (tests/web, tests/tuner); skips them where
    Playwright or /usr/bin/chromium is missing. Imported here, not at the top: most tests never start one."""
    from support.browser import chromium, unavailable

    reason = unavailable()
    if reason:
        pytest.skip(reason)
    with chromium() as launched:
        yield launched
