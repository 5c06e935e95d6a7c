"""Chat models from model specs: `offline`, or `openai:<model>` through the real `ChatOpenAI` client."""

from __future__ import annotations

import functools
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
    """The chat model for a turn: one instance per setting in a process (clients are thread-safe), so the
    agent compiled around it can serve the next turn too (`runner.compiled_agent`)."""
    if spec.provider == "offline":
        return _offline()
    key = settings.openai_api_key or _key_from_ref(settings)
    return _openai(spec.name, float(config.temperature), key.get_secret_value() if key else UNUSED_KEY,
                   settings.openai_base_url or OPENAI_DEFAULT_BASE_URL, float(config.max_execution_time))


@functools.cache
def _offline() -> BaseChatModel:
    from openbrain.conversation.agents.offline import OfflineChatModel

    return OfflineChatModel()


@functools.lru_cache(maxsize=32)
def _openai(name: str, temperature: float, key: str, base_url: str, timeout: float) -> BaseChatModel:
    """A `ChatOpenAI` (a rotated key or another base URL is another entry; the oldest go first)."""
    from langchain_openai import ChatOpenAI
    from pydantic import SecretStr

    return ChatOpenAI(model=name, temperature=temperature, api_key=SecretStr(key), base_url=base_url,
                      timeout=timeout, max_retries=1)


def _key_from_ref(settings: Settings) -> SecretStr | None:
    """The key OB_OPENAI_API_KEY_REF names, read through the backend's secret resolver (cached per process)."""
    if not settings.openai_api_key_ref:
        return None
    from pydantic import SecretStr

    from openbrain.aws.backend import get_backend
    from openbrain.aws.secrets import resolver_for

    return SecretStr(resolver_for(get_backend()).resolve(settings.openai_api_key_ref))
