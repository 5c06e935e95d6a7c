"""The PynamoDB models (the ORM) and binding them to the configured tables."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from pynamodb.models import Model

from openbrain.storage.orm.agent_config import AgentConfig
from openbrain.storage.orm.chat_session import ChatSession
from openbrain.storage.orm.client import Client
from openbrain.storage.orm.connection import Connection
from openbrain.storage.orm.lead import Lead
from openbrain.storage.orm.rate_counter import RateCounter

if TYPE_CHECKING:
    from openbrain.core.settings import Settings

MODELS: tuple[type[Model], ...] = (AgentConfig, ChatSession, Lead, Client, Connection, RateCounter)
_kept: tuple[object, ...] | None = None  # the table names, region and endpoint of a connection kept for reuse


def bind_models(settings: Settings, *, keep_connection: bool = False, host: str | None = None,
                credentials: Mapping[str, str] | None = None) -> None:
    """Point every model at the table names and region of `settings`, through one shared connection.

    `host` and `credentials` (`aws_access_key_id`, `aws_secret_access_key`) are for a DynamoDB endpoint the
    backend picked itself (the embedded store's process); without them PynamoDB resolves the endpoint and
    credentials as boto3 does.

    PynamoDB gives each model its own connection, and so its own botocore client, each parsing the
    DynamoDB service model (~70 ms a client, paid again on every cold start). A PynamoDB connection
    serves any table it has the schema of, so the models share the first one's. With
    `keep_connection` (the embedded backend, whose in-process DynamoDB answers any client of the process)
    a later bind to the same tables and region keeps that connection instead of building another.
    """
    global _kept
    names = settings.table_names()
    key = (*names.values(), settings.region, host)
    if keep_connection and _kept == key:
        return
    _kept = key if keep_connection else None
    shared = None
    for model in MODELS:
        model.Meta.table_name = names[model.__name__]
        model.Meta.region = settings.region
        model.Meta.host = host
        model.Meta.aws_access_key_id = (credentials or {}).get("aws_access_key_id")
        model.Meta.aws_secret_access_key = (credentials or {}).get("aws_secret_access_key")
        model._connection = None
        table = model._get_connection()
        if shared is None:
            shared = table.connection
        else:
            shared.add_meta_table(table.get_meta_table())
            table.connection = shared


__all__ = ["MODELS", "AgentConfig", "ChatSession", "Client", "Connection", "Lead", "RateCounter", "bind_models"]
