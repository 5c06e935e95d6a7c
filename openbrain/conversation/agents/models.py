"""Chat models from model specs: `offline`, or `<provider>:<model>` through langchain's `init_chat_model` (the
real `ChatOpenAI`, `ChatAnthropic`, ... of the provider's package).

Where a model's key and server come from (the rules are `openbrain.domain.model_spec`'s, docs/models.md):

- a profile's `base_url` gets the profile's own `credentials`, or a placeholder key (a keyless server):
  never the process-wide key, which the provider's SDK would otherwise read from the environment;
- else a profile's `credentials` go to the provider's endpoint (for `openai:`, `OPENAI_BASE_URL` if set);
- else `openai:` uses `OPENAI_API_KEY` / `OB_OPENAI_API_KEY_REF` and `OPENAI_BASE_URL` as it always has, and
  every other provider its SDK's own environment variables (`ANTHROPIC_API_KEY`, the AWS role, ...).

A key is resolved when a model is built and lives only inside its client: never in a profile, session,
event, log line or error message.
"""

from __future__ import annotations

import functools
import sys
from typing import TYPE_CHECKING, Any

from openbrain.core.errors import ConfigurationError
from openbrain.domain.model_spec import (
    PROVIDERS,
    ModelSpec,
    check_connection,
    check_credentials_owner,
    parse_model_spec,
)

if TYPE_CHECKING:
    from langchain_core.language_models.chat_models import BaseChatModel

    from openbrain.core.settings import Settings
    from openbrain.storage.orm.agent_config import AgentConfig

OFFLINE = ModelSpec("offline", "offline")
# A key for servers that ignore it (OPENAI_BASE_URL or a profile's base_url without a key): passed explicitly, so
# the provider's SDK does not read the process-wide key from the environment and send it there.
UNUSED_KEY = "unused"
# Passed explicitly: the openai SDK would otherwise read OPENAI_BASE_URL from the environment itself.
OPENAI_DEFAULT_BASE_URL = "https://api.openai.com/v1"
# Providers whose langchain class takes `timeout` and `max_retries` (the others: their client's own defaults;
# the turn's deadline bounds every call anyway, runner.TurnLimits).
_CLIENT_OPTIONS = frozenset({"openai", "anthropic", "google_genai", "mistralai", "groq"})
_noticed: set[str] = set()


def effective_model_spec(config: AgentConfig, settings: Settings, *, notice: bool = True) -> ModelSpec:
    """The model a turn really uses.

    `openai:*` with neither OPENAI_API_KEY nor OPENAI_BASE_URL (nor the profile's own base_url or credentials)
    falls back to `offline` on the memory backend and is a `ConfigurationError` on aws. The fallback prints a
    one-line notice on stderr, at most once per process and only if `notice` (a turn asks on a session's first
    turn only, so `ob --session ...` does not repeat it).
    """
    spec = parse_model_spec(config.model)
    if not _lacks_openai_key(spec, config, settings):
        return spec
    if settings.resolved_backend == "aws":
        raise ConfigurationError(
            f"model {spec} needs OPENAI_API_KEY (or OPENAI_BASE_URL for an OpenAI-compatible server); "
            "set it, or use the model 'offline'"
        )
    if notice and str(spec) not in _noticed:
        _noticed.add(str(spec))
        print(f"notice: OPENAI_API_KEY is not set; using the offline model instead of {spec}", file=sys.stderr)
    return OFFLINE


def effective_model_label(config: AgentConfig, settings: Settings) -> str:
    """`config`'s model as a turn would run it now, for a page or a `/config` that shows a config (the rule is
    `effective_model_spec`'s; this one prints nothing and raises nothing): `openai:gpt-4o` when it runs as
    asked, `openai:gpt-4o-mini → offline (no OPENAI_API_KEY)` when it falls back, and
    `openai:gpt-4o-mini → error (no OPENAI_API_KEY)` where a turn would be refused (aws)."""
    spec = parse_model_spec(config.model)
    if not _lacks_openai_key(spec, config, settings):
        return str(spec)
    outcome = "error" if settings.resolved_backend == "aws" else OFFLINE
    return f"{spec} → {outcome} (no OPENAI_API_KEY)"


def _lacks_openai_key(spec: ModelSpec, config: AgentConfig, settings: Settings) -> bool:
    """Whether `spec` is an `openai:` model with no key and no server to take one from (the fallback's rule)."""
    has_key = (settings.openai_api_key or settings.openai_api_key_ref or settings.openai_base_url
               or config.base_url or config.credentials)
    return spec.provider == "openai" and not has_key


def build_chat_model(spec: ModelSpec, config: AgentConfig, settings: Settings) -> BaseChatModel:
    """The chat model for a turn: one instance per setting in a process (clients are thread-safe), so the
    agent compiled around it can serve the next turn too (`runner.compiled_agent`)."""
    if spec.provider == "offline":
        return _offline()
    check_connection(spec, config.base_url, config.credentials)  # a stored profile was checked; a snapshot too
    check_credentials_owner(config.credentials, config.client_id)
    keyed = PROVIDERS[spec.provider].key_env is not None
    key: str | None = None
    base_url: str | None = None
    if config.base_url:
        base_url = config.base_url
        key = (_resolve(config.credentials) if config.credentials else UNUSED_KEY) if keyed else None
    elif config.credentials:
        key = _resolve(config.credentials)
    elif spec.provider == "openai":
        process_key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
        key = process_key or (_resolve(settings.openai_api_key_ref) if settings.openai_api_key_ref else UNUSED_KEY)
    if spec.provider == "openai" and base_url is None:
        base_url = settings.openai_base_url or OPENAI_DEFAULT_BASE_URL
    return _chat_model(spec.provider, spec.name, float(config.temperature), key, base_url,
                       float(config.max_execution_time))


def key_source(config: AgentConfig) -> str:
    """Where the key of `config`'s model comes from, for an error message (a name, never the key)."""
    spec = parse_model_spec(config.model)
    if config.credentials:
        return f"the profile's credentials {config.credentials}"
    provider = PROVIDERS.get(spec.provider)
    if config.base_url or provider is None:
        return "the model server's key"
    return provider.key_env or "the service's AWS credentials"


def endpoint_source(config: AgentConfig) -> str:
    """Where the URL of `config`'s model comes from, for an error message."""
    if config.base_url:
        return f"the profile's base_url {config.base_url}"
    return "OPENAI_BASE_URL" if parse_model_spec(config.model).provider == "openai" else "the network"


@functools.cache
def _offline() -> BaseChatModel:
    from openbrain.conversation.agents.offline import OfflineChatModel

    return OfflineChatModel()


@functools.lru_cache(maxsize=32)
def _chat_model(provider: str, name: str, temperature: float, key: str | None, base_url: str | None,
                timeout: float) -> BaseChatModel:
    """The provider's langchain chat model (a rotated key or another base URL is another entry; the oldest go
    first). Retries are the turn's (runner.TurnLimits), so the client makes none of its own."""
    from langchain.chat_models import init_chat_model
    from pydantic import SecretStr

    options: dict[str, Any] = {"temperature": temperature}
    if key is not None:
        options["api_key"] = SecretStr(key)
    if base_url is not None:
        options["base_url"] = base_url
    if provider in _CLIENT_OPTIONS:
        options.update(timeout=timeout, max_retries=0)
    return init_chat_model(name, model_provider=provider, **options)


def _resolve(ref: str) -> str:
    """The key `ref` names, read through the backend's secret resolver (cached per process)."""
    from openbrain.aws.backend import get_backend
    from openbrain.aws.secrets import resolver_for

    return resolver_for(get_backend()).resolve(ref, env=True)
