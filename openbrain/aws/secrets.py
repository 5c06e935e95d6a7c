"""Resolve a secret reference (`Client.webhook_secret_ref`) to the secret itself.

A reference names where a secret lives, never the secret:

- `ssm:/path/to/param` — an SSM parameter (a SecureString is decrypted: GetParameter WithDecryption);
- `secretsmanager:<name-or-arn>` — a Secrets Manager secret's SecretString (the whole string is the secret);
- `env:OB_MODEL_KEY_<NAME>` — for model credentials only (`resolve(ref, env=True)`): an environment variable of
  the process, read when resolved; only names with that prefix, so a profile cannot name any other variable.

Values are read through the backend's boto3 clients (moto on the memory backend) and cached per process
for `SECRET_CACHE_SECONDS`, so a rotated secret is picked up within that time (a caller can also
`invalidate` a reference, e.g. after a webhook refused a signature). A secret's value is never logged
and never put in an error message.
"""

from __future__ import annotations

import base64
import logging
import os
import secrets
import threading
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING

from openbrain.core.errors import ConfigurationError, InvalidInputError, UpstreamError

if TYPE_CHECKING:
    from openbrain.aws.backend import Backend

SECRET_CACHE_SECONDS = 300.0
SCHEMES = ("ssm", "secretsmanager")
ENV_PREFIX = "OB_MODEL_KEY_"
# AWS error codes that mean "the reference points at nothing we may read": a configuration problem.
_MISSING = {"ParameterNotFound", "ParameterVersionNotFound", "ResourceNotFoundException", "AccessDeniedException",
            "AccessDenied", "InvalidKeyId", "DecryptionFailure"}

log = logging.getLogger(__name__)


def parse_ref(ref: str) -> tuple[str, str]:
    """`"ssm:/a/b"` -> `("ssm", "/a/b")`. Raises `InvalidInputError` for anything else."""
    scheme, sep, name = (ref or "").partition(":")
    if not sep or scheme not in SCHEMES or not name.strip():
        raise InvalidInputError("a secret reference is 'ssm:/parameter/name' or 'secretsmanager:<name-or-arn>'")
    return scheme, name.strip()


class SecretResolver:
    """Reads secrets by reference through one backend, with a short per-process cache."""

    def __init__(
        self,
        backend: Backend,
        ttl_seconds: float = SECRET_CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._backend = backend
        self._ttl = ttl_seconds
        self._clock = clock
        self._cache: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def resolve(self, ref: str, *, env: bool = False) -> str:
        """The secret `ref` names (`env`: an `env:OB_MODEL_KEY_*` reference is allowed too). `InvalidInputError`
        for a malformed reference, `ConfigurationError` when it names nothing readable (missing, access denied,
        empty), `UpstreamError` when the store failed."""
        if env and ref.startswith("env:"):
            name = ref.removeprefix("env:")
            if not name.startswith(ENV_PREFIX) or len(name) == len(ENV_PREFIX):
                raise InvalidInputError(f"an env: reference names a variable {ENV_PREFIX}<NAME>")
            if not os.environ.get(name):
                raise ConfigurationError(f"the environment variable {name} is not set")
            return os.environ[name]
        scheme, name = parse_ref(ref)
        now = self._clock()
        with self._lock:
            cached = self._cache.get(ref)
            if cached is not None and cached[1] > now:
                return cached[0]
        value = self._fetch(scheme, name, ref)
        if not value:
            raise ConfigurationError(f"the secret {ref} is empty")
        with self._lock:
            self._cache[ref] = (value, now + self._ttl)
        return value

    def invalidate(self, ref: str | None = None) -> None:
        """Forget `ref` (or everything), so the next `resolve` reads the store again."""
        with self._lock:
            if ref is None:
                self._cache.clear()
            else:
                self._cache.pop(ref, None)

    def _fetch(self, scheme: str, name: str, ref: str) -> str:
        try:
            if scheme == "ssm":
                response = self._backend.client("ssm").get_parameter(Name=name, WithDecryption=True)
                return str(response["Parameter"]["Value"])
            response = self._backend.client("secretsmanager").get_secret_value(SecretId=name)
        except Exception as exc:  # botocore's ClientError and connection errors; no common base worth importing
            code = _error_code(exc)
            log.warning("could not read secret %s: %s", ref, code)
            if code in _MISSING:
                raise ConfigurationError(f"the secret {ref} cannot be read ({code})") from exc
            raise UpstreamError(f"the secret store did not answer for {ref} ({code})") from exc
        if "SecretString" not in response:
            raise ConfigurationError(f"the secret {ref} has no SecretString (binary secrets are not supported)")
        return str(response["SecretString"])


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code") or type(exc).__name__)
    return type(exc).__name__


def new_webhook_secret() -> str:
    """A Standard Webhooks signing secret: `whsec_` and the base64 of 32 random bytes (the spec asks 24-64)."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def put_ssm_secret(backend: Backend, name: str, value: str) -> str:
    """Store `value` as the SSM SecureString `name` (replacing the one there); its reference `ssm:<name>`.
    On the embedded backend the store process keeps it (docs/storage.md)."""
    ref = f"ssm:{name}"
    try:
        backend.client("ssm").put_parameter(Name=name, Value=value, Type="SecureString", Overwrite=True)
    except Exception as exc:  # botocore's ClientError and connection errors
        raise UpstreamError(f"could not store the secret {ref} ({_error_code(exc)})") from exc
    resolver_for(backend).invalidate(ref)
    return ref


def delete_ssm_secret(backend: Backend, ref: str) -> None:
    """Delete the SSM parameter `ref` (`ssm:<name>`) names; one already gone is no error."""
    scheme, name = parse_ref(ref)
    if scheme != "ssm":
        raise InvalidInputError(f"{ref} is not an SSM parameter")
    ssm = backend.client("ssm")
    try:
        ssm.delete_parameter(Name=name)
    except ssm.exceptions.ParameterNotFound:
        pass
    except Exception as exc:  # botocore's ClientError and connection errors
        raise UpstreamError(f"could not delete the secret {ref} ({_error_code(exc)})") from exc
    resolver_for(backend).invalidate(ref)


_resolvers: weakref.WeakKeyDictionary[Backend, SecretResolver] = weakref.WeakKeyDictionary()
_resolvers_lock = threading.Lock()


def resolver_for(backend: Backend) -> SecretResolver:
    """The process's resolver (and cache) for `backend`; a new backend starts with an empty cache."""
    with _resolvers_lock:
        resolver = _resolvers.get(backend)
        if resolver is None:
            resolver = _resolvers[backend] = SecretResolver(backend)
        return resolver
