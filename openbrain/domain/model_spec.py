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
- a `base_url` is `https://` to a host name, or `http(s)://` to `localhost`, a loopback/private IPv4 literal or
  `[::1]` (an Ollama or vLLM beside the service); never another IP literal (not the instance metadata service's
  link-local address), never user info, a query or a fragment (a key must not hide in the URL).
"""

from __future__ import annotations

import functools
import importlib.util
import re
from dataclasses import dataclass
from typing import Any

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
# One regular expression is the whole rule, so the OpenAPI document states exactly what is accepted: https to a
# host name (its last label starts with a letter, so no IP literal: not 169.254.169.254, not 0.0.0.0), or http(s)
# to localhost, a loopback or private IPv4 address or [::1]; a port 1-65535; a path without query or fragment.
_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST_NAME = rf"({_LABEL}\.)*[A-Za-z]([A-Za-z0-9-]{{0,61}}[A-Za-z0-9])?"
_LOCAL_HOST = (rf"(localhost|127\.{_OCTET}\.{_OCTET}\.{_OCTET}|10\.{_OCTET}\.{_OCTET}\.{_OCTET}"
               rf"|192\.168\.{_OCTET}\.{_OCTET}|172\.(1[6-9]|2[0-9]|3[01])\.{_OCTET}\.{_OCTET}|\[::1\])")
_PORT = r"(:([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?"
BASE_URL_PATTERN = rf"^((https://{_HOST_NAME}|https?://{_LOCAL_HOST}){_PORT}(/[A-Za-z0-9._~%!$&'()*+,;=:@/-]*)?)?$"
"""Every `base_url` `check_base_url` accepts, and "" for none (the OpenAPI document's pattern of `base_url`)."""
_BASE_URL = re.compile(BASE_URL_PATTERN)
CREDENTIALS_PATTERN = f"^({_ENV_REF.pattern.strip('^$')}|{_STORE_REF.pattern.strip('^$')})?$"
"""Every reference `check_credentials` accepts, and "" for none (the OpenAPI document's pattern of `credentials`)."""
_CREDENTIALS = re.compile(CREDENTIALS_PATTERN)


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


def check_base_url(url: str) -> str | None:
    """`url` if a profile may name it as its model server (`BASE_URL_PATTERN`), None for ""; else
    `InvalidInputError`. Python's `$` also matches before a last newline, as in the OpenAPI document's pattern
    (which schemathesis checks with Python's `re`): that newline is dropped."""
    if len(url) > MAX_BASE_URL_CHARS or not _BASE_URL.match(url):
        raise InvalidInputError("base_url must be an https:// URL to a host name, or http(s):// to localhost or a "
                                f"loopback or private IPv4 address, with no key, query or fragment in it; got {url!r}")
    return url.removesuffix("\n") or None


def check_credentials(ref: str) -> str | None:
    """`ref` if it is a credentials reference a profile may name (module docstring), None for ""; else
    `InvalidInputError`."""
    if _CREDENTIALS.match(ref):
        return ref.removesuffix("\n") or None
    raise InvalidInputError(
        f"credentials must be 'env:{ENV_KEY_PREFIX}<NAME>', 'ssm:/openbrain/clients/<client_id>/<name>' or "
        f"'secretsmanager:openbrain/clients/<client_id>/<name>', got {ref!r}"
    )


def connection_rules() -> list[Any]:
    """What `check_connection` refuses, as JSON Schema `if`/`then` rules over a profile's `model`, `base_url` and
    `credentials` (the OpenAPI document's `allOf`). "Given" is a string with a character other than a newline:
    null, "" and "\n" are no value."""
    given: dict[str, Any] = {"type": "string", "pattern": "."}
    absent = {"not": given}
    rules: list[Any] = [
        {"if": {"required": ["model"], "properties": {"model": {"pattern": r"^\s*offline\s*$"}}},
         "then": {"properties": {"base_url": absent, "credentials": absent}}},
        {"if": {"required": ["base_url", "credentials"], "properties": {"base_url": given, "credentials": given}},
         "then": {"properties": {"credentials": {"not": {"pattern": "^env:"}}}}},
    ]
    for name, provider in PROVIDERS.items():
        takes_none = {"base_url": absent} if not provider.base_url else {}
        if provider.key_env is None:
            takes_none["credentials"] = absent
        if takes_none:
            rules.append({"if": {"required": ["model"], "properties": {"model": {"pattern": rf"^\s*{name}:"}}},
                          "then": {"properties": takes_none}})
    return rules


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
