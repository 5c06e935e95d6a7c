"""The URL rules of clients: the origins a widget may call from, and where leads may be delivered.

A lead's personal data never crosses a network in clear text: a webhook is https, or plain http only to
this machine (local stacks, tests). One rule serves `ob-admin` (validating what an operator types) and
the lead_webhook target (checking again before each delivery).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from openbrain.core.errors import InvalidInputError

LOOPBACK_HOSTS = {"127.0.0.1", "::1", "localhost"}
MAX_URL_CHARS = 2048
_DEFAULT_PORTS = {"http": 80, "https": 443}


def plain_enough(scheme: str, host: str | None) -> bool:
    """Whether a webhook may be reached with `scheme` at `host`: https anywhere, http only to loopback."""
    return bool(host) and (scheme == "https" or (scheme == "http" and host in LOOPBACK_HOSTS))


def webhook_host(url: str) -> str:
    """What logs and errors may say about a webhook URL (its path or query string may carry a token)."""
    return urlsplit(url).hostname or "?"


def validate_origin(origin: str) -> str:
    """`scheme://host[:port]` as a browser sends it in `Origin` (lower case, no default port)."""
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError as exc:
        raise InvalidInputError(f"origin {origin!r} is not a valid URL: {exc}") from exc
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise InvalidInputError(f"origin {origin!r} must be http(s)://host[:port]")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username or parts.password:
        raise InvalidInputError(f"origin {origin!r} must be only http(s)://host[:port], without path or query")
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    suffix = f":{port}" if port is not None and port != _DEFAULT_PORTS[parts.scheme] else ""
    return f"{parts.scheme}://{host}{suffix}"


def validate_webhook_url(url: str) -> str:
    """An https URL; plain http only to this machine (127.0.0.1, localhost, ::1) for local testing."""
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as exc:
        raise InvalidInputError(f"webhook URL {url!r} is not a valid URL: {exc}") from exc
    if len(url) > MAX_URL_CHARS or not parts.hostname:
        raise InvalidInputError(f"webhook URL {url!r} must be an https:// URL of at most {MAX_URL_CHARS} characters")
    if parts.username or parts.password:
        raise InvalidInputError("webhook URL must not contain credentials; use --webhook-secret-ref for the secret")
    if plain_enough(parts.scheme, parts.hostname):
        return url.strip()
    raise InvalidInputError(
        f"webhook URL {url!r} must use https:// (http:// is allowed only for 127.0.0.1 or localhost)"
    )
