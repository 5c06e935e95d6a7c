"""Model specs, `offline` or `<provider>:<model>` as `langchain.chat_models.init_chat_model` reads them, and the
rules for a profile's own model connection (`base_url`, `credentials`). Nothing here imports a model runtime:
whether a provider's package is installed is asked of `importlib.util.find_spec`.

Who may send what where (a profile is written by one client's admin key, so it must not reach the operator's
keys nor another client's):

- `credentials` is a reference, never a key: `env:OB_MODEL_KEY_<NAME>` (a key the operator offers every
  client, like `OPENAI_API_KEY`), or `ssm:/openbrain/clients/<client_id>/<name>` /
  `secretsmanager:openbrain/clients/<client_id>/<name>` (the client's own key, under its own prefix);
- a profile's `base_url` is only ever sent the profile's own `ssm:`/`secretsmanager:` credentials, or no key at
  all (a keyless server): never the process-wide key, never an `env:` key;
- a `base_url` is `https://`, or `http://` to `localhost` or a loopback/private IP literal (an Ollama or vLLM
  beside the service); never a link-local address (the instance metadata service), never user info, a query or
  a fragment (a key must not hide in the URL).
"""

from __future__ import annotations

import functools
import importlib.util
import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from openbrain.core.errors import ForbiddenError, InvalidInputError


@dataclass(frozen=True)
class Provider:
    """What a provider needs: its langchain package (`module` to look for, `distribution` to install, through
    the `extra` of openbrain), the environment variable its client reads a key from (None: it takes no API key,
    e.g. the AWS role or a keyless server), and whether a profile may point it at its own `base_url`."""

    module: str
    distribution: str
    extra: str
    key_env: str | None
    base_url: bool = True


PROVIDERS: dict[str, Provider] = {
    "openai": Provider("langchain_openai", "langchain-openai", "openai", "OPENAI_API_KEY"),
    "anthropic": Provider("langchain_anthropic", "langchain-anthropic", "anthropic", "ANTHROPIC_API_KEY"),
    # signed with the function's AWS role: only the operator's endpoint (AWS_ENDPOINT_URL_BEDROCK_RUNTIME)
    "bedrock_converse": Provider("langchain_aws", "langchain-aws", "bedrock", None, base_url=False),
    "ollama": Provider("langchain_ollama", "langchain-ollama", "ollama", None),
    "google_genai": Provider("langchain_google_genai", "langchain-google-genai", "google", "GOOGLE_API_KEY"),
    "mistralai": Provider("langchain_mistralai", "langchain-mistralai", "mistralai", "MISTRAL_API_KEY"),
    "groq": Provider("langchain_groq", "langchain-groq", "groq", "GROQ_API_KEY"),
}
"""The providers a spec may name (`init_chat_model` knows more; one row here adds one)."""

_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@-]{0,127}$")
ENV_KEY_PREFIX = "OB_MODEL_KEY_"
_ENV_REF = re.compile(r"^env:(OB_MODEL_KEY_[A-Z0-9_]{1,64})$")
_STORE_REF = re.compile(r"^(ssm:/|secretsmanager:)openbrain/clients/([A-Za-z0-9_-]{1,64})/[A-Za-z0-9_./-]{1,256}$")
MAX_BASE_URL_CHARS = 2048
CREDENTIALS_PATTERN = f"^({_ENV_REF.pattern.strip('^$')}|{_STORE_REF.pattern.strip('^$')})$"
"""Every reference `check_credentials` accepts (the OpenAPI document's pattern of `credentials`)."""


@dataclass(frozen=True)
class ModelSpec:
    provider: str
    name: str

    def __str__(self) -> str:
        return self.provider if self.provider == "offline" else f"{self.provider}:{self.name}"


def parse_model_spec(spec: str) -> ModelSpec:
    """`offline` -> ModelSpec("offline", "offline"); `anthropic:claude-3-5-haiku-latest` -> ModelSpec("anthropic",
    ...). Raises `InvalidInputError` naming the accepted forms for anything else, and naming the package to
    install (and openbrain's extra that brings it) for a provider whose package is missing."""
    text = (spec or "").strip()
    if text == "offline":
        return ModelSpec("offline", "offline")
    provider, sep, name = text.partition(":")
    if not (sep and provider in PROVIDERS and _MODEL_NAME.match(name)):
        forms = ", ".join(f"'{name}:<model>'" for name in PROVIDERS)
        raise InvalidInputError(f"invalid model spec {spec!r}: use 'offline' or {forms} (e.g. 'openai:gpt-4o-mini')")
    package = PROVIDERS[provider]
    if not _installed(package.module):
        raise InvalidInputError(
            f"model {text!r} needs the package {package.distribution}: pip install 'openbrain-agents[{package.extra}]'"
        )
    return ModelSpec(provider, name)


def spec_pattern() -> str:
    """The specs `parse_model_spec` accepts on this installation, as a regular expression (for the OpenAPI
    document: a provider whose package is missing is not offered)."""
    installed = "|".join(name for name, provider in PROVIDERS.items() if _installed(provider.module))
    name = _MODEL_NAME.pattern.strip("^$")
    return rf"^\s*(offline|({installed}):{name})\s*$" if installed else r"^\s*offline\s*$"


@functools.cache
def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def check_base_url(url: str) -> str:
    """`url` if a profile may name it as its model server (module docstring); else `InvalidInputError`."""
    parts = urlsplit(url)
    try:
        host, port = parts.hostname or "", parts.port  # .port raises on a bad port
    except ValueError:
        host, port = "", None
    rule = "base_url must be an https:// URL, or http:// to localhost or a private address, without a key in it"
    if (len(url) > MAX_BASE_URL_CHARS or parts.scheme not in ("https", "http") or not host or port == 0
            or parts.username is not None or parts.password is not None or parts.query or parts.fragment):
        raise InvalidInputError(f"{rule}, got {url!r}")
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None and (address.is_link_local or address.is_unspecified or address.is_multicast):
        raise InvalidInputError(f"base_url must not name a link-local, unspecified or multicast address, got {url!r}")
    local = host == "localhost" or (address is not None and (address.is_loopback or address.is_private))
    if parts.scheme == "http" and not local:
        raise InvalidInputError(f"{rule}, got {url!r}")
    return url


def check_credentials(ref: str) -> str:
    """`ref` if it is a credentials reference a profile may name (module docstring); else `InvalidInputError`."""
    if _ENV_REF.match(ref) or _STORE_REF.match(ref):
        return ref
    raise InvalidInputError(
        f"credentials must be 'env:{ENV_KEY_PREFIX}<NAME>', 'ssm:/openbrain/clients/<client_id>/<name>' or "
        f"'secretsmanager:openbrain/clients/<client_id>/<name>', got {ref!r}"
    )


def check_connection(spec: ModelSpec, base_url: str | None, credentials: str | None) -> None:
    """The profile's model, `base_url` and `credentials` together (each already checked on its own)."""
    if spec.provider == "offline" and (base_url or credentials):
        raise InvalidInputError("the offline model takes no base_url or credentials")
    provider = PROVIDERS.get(spec.provider)
    if provider is None:
        return
    if base_url and not provider.base_url:
        raise InvalidInputError(f"{spec.provider} takes no base_url: it is signed with the service's AWS role")
    if credentials and provider.key_env is None:
        raise InvalidInputError(f"{spec.provider} takes no credentials")
    if base_url and credentials and credentials.startswith("env:"):
        raise InvalidInputError(
            "a profile's base_url is only sent the profile's own credentials (ssm: or secretsmanager:), "
            "not an env: key"
        )


def check_credentials_owner(credentials: str | None, client_id: str) -> None:
    """An `ssm:`/`secretsmanager:` reference must be under `client_id`'s own prefix; else `ForbiddenError` (a
    well-formed reference the caller may not use, as the API answers another client's id)."""
    match = _STORE_REF.match(credentials or "")
    if match and match.group(2) != client_id:
        raise ForbiddenError(
            f"credentials of client {client_id!r} must be under openbrain/clients/{client_id}/, got {credentials!r}"
        )
