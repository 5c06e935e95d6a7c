"""The PynamoDB models (the ORM) and binding them to the configured tables."""

from __future__ import annotations

from typing import TYPE_CHECKING

from openbrain.orm.agent_config import AgentConfig, MemoryPolicy
from openbrain.orm.base import OpenBrainModel
from openbrain.orm.chat_session import ChatSession
from openbrain.orm.client import Client
from openbrain.orm.lead import Lead

if TYPE_CHECKING:
    from openbrain.settings import Settings

MODELS: tuple[type[OpenBrainModel], ...] = (AgentConfig, ChatSession, Lead, Client)


def bind_models(settings: Settings) -> None:
    """Point every model at the table names and region of `settings` (and drop cached connections)."""
    names = settings.table_names()
    for model in MODELS:
        model.Meta.table_name = names[model.__name__]
        model.Meta.region = settings.region
        model._connection = None


__all__ = ["MODELS", "AgentConfig", "ChatSession", "Client", "Lead", "MemoryPolicy", "bind_models"]
