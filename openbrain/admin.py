"""Operating OpenBrain: clients and their API keys, and creating the AWS resources on an endpoint.

What `ob-admin` calls; the CLI only parses arguments and prints. An API key is returned once, when it
is made, and never stored (the Client keeps its hash). Config export/import is in `configs_io.py`.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from openbrain.errors import ConfigurationError, ConflictError, InvalidInputError, NotFoundError, UpstreamError
from openbrain.orm import MODELS, AgentConfig, Client
from openbrain.orm.client import SERVER, WIDGET, validate_client_id
from openbrain.targets.http import LOOPBACK_HOSTS

if TYPE_CHECKING:
    from collections.abc import Iterable

    from openbrain.backend import Backend

log = logging.getLogger(__name__)

MAX_DISPLAY_NAME_CHARS = 200
MAX_URL_CHARS = 2048
# Hosts a webhook may reach over plain http, for local testing (a test server on this machine).
_DEFAULT_PORTS = {"http": 80, "https": 443}


# --- validation ------------------------------------------------------------------------------------

def slugify(name: str) -> str:
    """A client id from a display name: ASCII letters and digits, lower case, '-' between words."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:64].rstrip("-")


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
    if parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS):
        return url.strip()
    raise InvalidInputError(
        f"webhook URL {url!r} must use https:// (http:// is allowed only for 127.0.0.1 or localhost)"
    )


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
        "created_at": client.created_at.isoformat() if client.created_at else None,
        "updated_at": client.updated_at.isoformat() if client.updated_at else None,
    }
    if profiles is not None:
        info["profiles"] = sorted(profiles)
    return info


def create_client(
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
        Client.get(client_id)
    except NotFoundError:
        pass
    else:
        raise ConflictError(f"client {client_id!r} already exists; rotate its key with: client rotate-key")
    api_key = client.add_api_key(SERVER)
    widget_key = client.add_api_key(WIDGET)
    try:
        client.save()  # a new item: the version condition refuses to overwrite one saved meanwhile
    except ConflictError as exc:
        raise ConflictError(f"client {client_id!r} already exists") from exc
    log.info("created client %s", client_id)
    return client, api_key, widget_key


def get_client(client_id: str) -> Client:
    try:
        return Client.get(validate_client_id(client_id))
    except NotFoundError as exc:
        raise NotFoundError(f"client {client_id!r} not found") from exc


def list_clients() -> list[Client]:
    """Every client, by id (a scan: an operator's command, not a request path)."""
    from pynamodb.exceptions import PynamoDBException

    try:
        return sorted(Client.scan(), key=lambda client: client.client_id)
    except PynamoDBException as exc:
        raise UpstreamError(f"DynamoDB could not list clients ({exc.cause_response_code or exc})") from exc


def profile_names(client_id: str) -> list[str]:
    return [config.profile_name for config in AgentConfig.iter_all(client_id)]


def rotate_key(client_id: str, keep_old: bool = False, kind: str = SERVER) -> tuple[Client, str]:
    """Add a new API key of `kind` to the client and, unless `keep_old`, revoke its other keys of that kind.

    Load-then-save: a concurrent change to the client is a `ConflictError`, never a lost key.
    """
    client = get_client(client_id)
    if not keep_old:
        client.revoke_api_keys(kind)
    api_key = client.add_api_key(kind)
    client.save()
    log.info("rotated the API key of client %s (old keys %s)", client_id, "kept" if keep_old else "revoked")
    return client, api_key


# --- resources -------------------------------------------------------------------------------------

@dataclass
class InitReport:
    """What `init_resources` found and did."""

    backend: str
    endpoint: str | None
    tables: dict[str, str] = field(default_factory=dict)  # table name -> "created" | "exists"
    event_bus: str = ""
    queues: dict[str, str] = field(default_factory=dict)  # queue name -> URL
    message: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "endpoint": self.endpoint,
            "tables": self.tables,
            "event_bus": self.event_bus,
            "queues": self.queues,
            "message": self.message,
        }


def init_resources(backend: Backend) -> InitReport:
    """Create the tables, event bus, rules and queues of `openbrain.infra` where they are missing.

    For `aws` (real AWS or an `AWS_ENDPOINT_URL` endpoint); idempotent. The memory backend creates
    them itself whenever it starts, so for it this only reports what exists.
    """
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
    from pynamodb.exceptions import PynamoDBException

    from openbrain.infra import create_event_resources, create_tables

    settings = backend.settings
    report = InitReport(
        backend=backend.kind,
        endpoint=backend.client("dynamodb").meta.endpoint_url,
        event_bus=settings.event_bus_name,
    )
    if backend.kind == "memory":
        report.tables = {model.Meta.table_name: "exists" for model in MODELS}
        report.queues = dict(backend.queue_urls)
        report.endpoint = None
        report.message = (
            "the embedded (memory) backend creates its tables, bus, rules and queues itself whenever it "
            "starts; nothing to do. To prepare a shared endpoint set OB_BACKEND=aws and AWS_ENDPOINT_URL."
        )
        return report
    where = report.endpoint or "AWS"
    try:
        existed = {model.Meta.table_name: model.exists() for model in MODELS}
        create_tables()
        report.tables = {name: "exists" if before else "created" for name, before in existed.items()}
        report.queues = create_event_resources(backend.client("events"), backend.client("sqs"), settings)
    except (BotoCoreError, ClientError, PynamoDBException) as exc:
        cause: BaseException = exc
        if isinstance(exc, PynamoDBException) and isinstance(exc.cause, BaseException):
            cause = exc.cause  # PynamoDB wraps botocore's error
        if isinstance(cause, NoCredentialsError):
            raise ConfigurationError(
                f"no AWS credentials for {where}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                "(any values do for a local endpoint)"
            ) from exc
        detail = " ".join(str(cause).split())
        raise UpstreamError(f"could not create the OpenBrain resources on {where}: {detail}") from exc
    created = [name for name, state in report.tables.items() if state == "created"]
    report.message = (
        f"created {len(created)} of {len(report.tables)} tables; bus {settings.event_bus_name}, "
        f"{len(report.queues)} queues and their rules are in place on {where}"
    )
    log.info("init on %s: %s", where, report.message)
    return report
