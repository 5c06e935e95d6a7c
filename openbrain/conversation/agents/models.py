"""Chat models from model specs: `offline`, or `openai:<model>` through the real `ChatOpenAI` client."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from openbrain.core.errors import ConfigurationError
from openbrain.domain.model_spec import ModelSpec, parse_model_spec

if TYPE_CHECKING:
    from langchain_core.language_models.chat_models import BaseChatModel
    from pydantic import SecretStr

    from openbrain.core.settings import Settings
    from openbrain.storage.orm.agent_config import AgentConfig

OFFLINE = ModelSpec("offline", "offline")
# A key for OpenAI-compatible servers that ignore it (OPENAI_BASE_URL set, OPENAI_API_KEY not).
UNUSED_KEY = "unused"
# Passed explicitly: the openai SDK would otherwise read OPENAI_BASE_URL from the environment itself.
OPENAI_DEFAULT_BASE_URL = "https://api.openai.com/v1"
_noticed: set[str] = set()


def effective_model_spec(config: AgentConfig, settings: Settings) -> ModelSpec:
    """The model a turn really uses.

    `openai:*` with neither OPENAI_API_KEY nor OPENAI_BASE_URL falls back to `offline` on the memory
    backend (with a one-line notice on stderr, once per process) and is a `ConfigurationError` on aws.
    """
    spec = parse_model_spec(config.model)
    has_key = settings.openai_api_key or settings.openai_api_key_ref or settings.openai_base_url
    if spec.provider != "openai" or has_key:
        return spec
    if settings.resolved_backend == "aws":
        raise ConfigurationError(
            f"model {spec} needs OPENAI_API_KEY (or OPENAI_BASE_URL for an OpenAI-compatible server); "
            "set it, or use the model 'offline'"
        )
    if str(spec) not in _noticed:
        _noticed.add(str(spec))
        print(f"notice: OPENAI_API_KEY is not set; using the offline model instead of {spec}", file=sys.stderr)
    return OFFLINE


def build_chat_model(spec: ModelSpec, config: AgentConfig, settings: Settings) -> BaseChatModel:
    if spec.provider == "offline":
        from openbrain.conversation.agents.offline import OfflineChatModel

        return OfflineChatModel()
    from langchain_openai import ChatOpenAI
    from pydantic import SecretStr

    key = settings.openai_api_key or _key_from_ref(settings) or SecretStr(UNUSED_KEY)
    return ChatOpenAI(
        model=spec.name,
        temperature=float(config.temperature),
        api_key=key,
        base_url=settings.openai_base_url or OPENAI_DEFAULT_BASE_URL,
        timeout=float(config.max_execution_time),
        max_retries=1,
    )


def _key_from_ref(settings: Settings) -> SecretStr | None:
    """The key OB_OPENAI_API_KEY_REF names, read through the backend's secret resolver (cached per process)."""
    if not settings.openai_api_key_ref:
        return None
    from pydantic import SecretStr

    from openbrain.aws.backend import get_backend
    from openbrain.aws.secrets import resolver_for

    return SecretStr(resolver_for(get_backend()).resolve(settings.openai_api_key_ref))
