"""Choosing the backend at run time, from one settings object."""

from __future__ import annotations

import pytest

from openbrain.aws.backend import Backend, get_backend, set_backend
from openbrain.core.errors import ConfigurationError
from openbrain.core.settings import Settings, load_settings
from openbrain.storage.orm import AgentConfig, ChatSession


def test_memory_is_the_default_outside_lambda_and_aws_inside() -> None:
    assert Settings(memory_store=None).resolved_backend == "memory"
    assert Settings(lambda_function_name="chat").resolved_backend == "aws"


def test_the_memory_backend_is_refused_inside_lambda() -> None:
    settings = Settings(backend="memory", lambda_function_name="chat", memory_store=None)
    with pytest.raises(ConfigurationError, match="refused inside AWS Lambda"):
        Backend(settings).start()


def test_bad_environment_values_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OB_BACKEND", "sqlite")
    with pytest.raises(ConfigurationError, match="OB_BACKEND"):
        load_settings()


def test_table_names_and_region_come_from_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OB_CHAT_SESSION_TABLE", "acme-sessions")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    backend = Backend(Settings(backend="memory", memory_store=None)).start()
    try:
        assert ChatSession.Meta.table_name == "acme-sessions"
        assert ChatSession.Meta.region == "eu-west-1"
        assert "acme-sessions" in backend.client("dynamodb").list_tables()["TableNames"]
        AgentConfig("acme", "p", model="offline").save()
        assert AgentConfig.get("acme", "p").model == "offline"
    finally:
        backend.close()


def test_get_backend_builds_one_backend_from_the_environment_on_first_use(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OB_MEMORY_STORE", "none")
    previous = set_backend(None)
    try:
        first = get_backend()
        assert first is get_backend()
        assert first.kind == "memory" and first.settings.memory_store is None
        first.close()
    finally:
        set_backend(previous)


def test_the_aws_backend_creates_nothing_and_only_binds_the_models() -> None:
    backend = Backend(Settings(backend="aws", region="ap-southeast-2", memory_store=None)).start()
    assert backend.kind == "aws" and backend.queue_urls == {}
    assert AgentConfig.Meta.region == "ap-southeast-2"


def test_a_restarted_memory_backend_starts_empty_but_keeps_its_aws_clients() -> None:
    # given a memory backend that stored a profile, then closed
    settings = Settings(backend="memory", memory_store=None)
    first = Backend(settings).start()
    AgentConfig("acme", "p", model="offline").save()
    dynamodb, connection = first.client("dynamodb"), AgentConfig._get_connection().connection
    first.close()
    # when another one starts in the same process
    second = Backend(settings).start()
    try:
        # then it sees none of the first one's data, through the same clients (none rebuilt)
        assert AgentConfig.get_all("acme") == []
        assert second.client("dynamodb") is dynamodb
        assert AgentConfig._get_connection().connection is connection
    finally:
        second.close()


def test_a_memory_backend_on_other_tables_binds_a_new_connection() -> None:
    first = Backend(Settings(backend="memory", memory_store=None)).start()
    connection = AgentConfig._get_connection().connection
    first.close()
    second = Backend(Settings(backend="memory", memory_store=None, agent_config_table="other-configs")).start()
    try:
        assert AgentConfig.Meta.table_name == "other-configs"
        assert AgentConfig._get_connection().connection is not connection
    finally:
        second.close()
