"""Operating OpenBrain: clients and their API keys, and creating the AWS resources on an endpoint.

What `ob-admin` calls; the CLI only parses arguments and prints. Every function takes the backend's
`Stores` (`backend.stores`). An API key is returned once, when it is made, and never stored (the Client
keeps its hash). Config export/import is in `configs_io.py`.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from openbrain.core.errors import ConflictError, InvalidInputError, NotFoundError
from openbrain.domain.limits import RateLimits
from openbrain.domain.urls import MAX_URL_CHARS, validate_origin, validate_webhook_url
from openbrain.storage.orm import Client
from openbrain.storage.orm.client import SERVER, WIDGET, validate_client_id

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from openbrain.aws.backend import Backend
    from openbrain.storage.stores import Stores


log = logging.getLogger(__name__)

MAX_DISPLAY_NAME_CHARS = 200


# --- validation ------------------------------------------------------------------------------------

def slugify(name: str) -> str:
    """A client id from a display name: ASCII letters and digits, lower case, '-' between words."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:64].rstrip("-")


def validate_secret_ref(ref: str) -> str:
    """Where the webhook signing secret lives (an SSM parameter name or a Secrets Manager ARN/name)."""
    if not ref or len(ref) > MAX_URL_CHARS or any(ch.isspace() for ch in ref):
        raise InvalidInputError("webhook secret reference must be a parameter or secret name without spaces")
    return ref


# --- clients ---------------------------------------------------------------------------------------

def describe_client(client: Client, profiles: Iterable[str] | None = None) -> dict[str, Any]:
    """What an operator may see of a client: never a key or a key's hash."""
    info: dict[str, Any] = {
        "client_id": client.client_id,
        "display_name": client.display_name,
        "api_keys": client.api_key_count(SERVER),
        "widget_keys": client.api_key_count(WIDGET),
        "allowed_origins": list(client.allowed_origins or []),
        "webhook_url": client.webhook_url,
        "webhook_secret_ref": client.webhook_secret_ref,
        "identity_secret_ref": client.identity_secret_ref,
        "identity_required": bool(client.identity_required),
        "limits": client.rate_limits.model_dump(),
        "created_at": client.created_at.isoformat() if client.created_at else None,
        "updated_at": client.updated_at.isoformat() if client.updated_at else None,
    }
    if profiles is not None:
        info["profiles"] = sorted(profiles)
    return info


def create_client(
    stores: Stores,
    name: str,
    client_id: str | None = None,
    origins: Iterable[str] = (),
    webhook_url: str | None = None,
    webhook_secret_ref: str | None = None,
) -> tuple[Client, str, str]:
    """Create a Client with a server API key and a widget key. Returns the saved client and the two keys
    (shown once).

    The id is `client_id`, or a slug of `name`. An existing client is never overwritten.
    """
    display_name = name.strip()
    if not display_name or len(display_name) > MAX_DISPLAY_NAME_CHARS:
        raise InvalidInputError(f"client name must be 1-{MAX_DISPLAY_NAME_CHARS} characters")
    if client_id is None:
        client_id = slugify(display_name)
        if not client_id:
            raise InvalidInputError(f"cannot make a client id from {name!r}; pass --client-id")
    validate_client_id(client_id)
    allowed = list(dict.fromkeys(validate_origin(origin) for origin in origins))
    client = Client(
        client_id,
        display_name=display_name,
        allowed_origins=allowed,
        webhook_url=validate_webhook_url(webhook_url) if webhook_url else None,
        webhook_secret_ref=validate_secret_ref(webhook_secret_ref) if webhook_secret_ref else None,
    )
    try:
        stores.clients.get(client_id)
    except NotFoundError:
        pass
    else:
        raise ConflictError(f"client {client_id!r} already exists; new keys for it: "
                            f"`ob-admin client rotate-key {client_id}`")
    api_key = client.add_api_key(SERVER)
    widget_key = client.add_api_key(WIDGET)
    try:
        stores.clients.save(client)  # a new item: the version condition refuses to overwrite one saved meanwhile
    except ConflictError as exc:
        raise ConflictError(f"client {client_id!r} already exists") from exc
    log.info("created client %s", client_id)
    return client, api_key, widget_key


def get_client(stores: Stores, client_id: str) -> Client:
    try:
        return stores.clients.get(validate_client_id(client_id))
    except NotFoundError as exc:
        raise NotFoundError(f"client {client_id!r} not found") from exc


def list_clients(stores: Stores) -> list[Client]:
    """Every client, by id (a scan: an operator's command, not a request path)."""
    return stores.clients.all()


def profile_names(stores: Stores, client_id: str) -> list[str]:
    return [config.profile_name for config in stores.profiles.of_client(client_id)]


def rotate_key(stores: Stores, client_id: str, keep_old: bool = False, kind: str = SERVER) -> tuple[Client, str]:
    """Add a new API key of `kind` to the client and, unless `keep_old`, revoke its other keys of that kind.

    Load-then-save: a concurrent change to the client is a `ConflictError`, never a lost key.
    """
    client = get_client(stores, client_id)
    if not keep_old:
        client.revoke_api_keys(kind)
    api_key = client.add_api_key(kind)
    stores.clients.save(client)
    log.info("rotated the API key of client %s (old keys %s)", client_id, "kept" if keep_old else "revoked")
    return client, api_key


def rotate_webhook_secret(backend: Backend, client_id: str, webhook_url: str | None = None) -> tuple[Client, str]:
    """A new signing secret for the client's webhook (and its URL, if given): stored as the SSM SecureString
    `<OB_WEBHOOK_SECRETS_PATH>/<client_id>` (replacing the one there) and the client pointed at it. Returns the
    client and the secret (shown once). The targets read secrets through a cache of `SECRET_CACHE_SECONDS`, so
    a running one signs with the old secret for up to that long."""
    from openbrain.aws.secrets import new_webhook_secret, put_ssm_secret

    client = get_client(backend.stores, client_id)
    url = validate_webhook_url(webhook_url) if webhook_url else client.webhook_url
    if not url:
        raise InvalidInputError(f"client {client_id!r} has no webhook URL; give one with --webhook URL")
    secret = new_webhook_secret()
    ref = put_ssm_secret(backend, f"{backend.settings.webhook_secrets_path}/{client.client_id}", secret)
    if (client.webhook_url, client.webhook_secret_ref) != (url, ref):
        client.webhook_url, client.webhook_secret_ref = url, ref
        backend.stores.clients.save(client)
    log.info("made a new webhook signing secret for client %s (%s)", client_id, ref)
    return client, secret


# --- rate limits -----------------------------------------------------------------------------------

def set_limits(stores: Stores, client: Client | str, changes: Mapping[str, int], *, reset: bool = False) -> RateLimits:
    """Set the client's rate limits and quotas named in `changes` (the others stay; with `reset`, the others
    go back to the defaults: domain/limits.py). Returns the limits now in force."""
    if isinstance(client, str):
        client = get_client(stores, client)
    base = {} if reset else client.rate_limits.model_dump()
    try:
        limits = RateLimits(**{**base, **changes})
    except ValidationError as exc:
        first = exc.errors()[0]
        raise InvalidInputError(f"{'.'.join(str(p) for p in first['loc']) or 'limits'}: {first['msg']}") from exc
    stores.clients.set_limits(client, limits.changed())
    return limits
