"""Reaching open WebSocket connections from any process: the Management API of API Gateway's WebSocket stage, or
`ob-serve`'s own on loopback (openbrain/local/management.py), through one boto3 client path.

`ManagementApi` is the `Socket` (api/websocket.py) of a connection a Lambda does not hold; `push` posts a frame to
every open connection of a session (a scheduled message: conversation/schedules.py, docs/api.md "Pushed frames").
Each connection record carries the Management API that reaches it (`Connection.endpoint`).
"""

from __future__ import annotations

import contextlib
import json
import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from openbrain.core.clock import utcnow
from openbrain.domain.urls import LOOPBACK_HOSTS

if TYPE_CHECKING:
    from openbrain.aws.backend import Backend

log = logging.getLogger(__name__)


class ConnectionGoneError(Exception):
    """The connection is gone (API Gateway's 410 GoneException, or a closed local socket)."""


class ManagementApi:
    """The `Socket` of API Gateway: the Management API of the stage at `endpoint` (`https://<domain>/<stage>`),
    or `ob-serve`'s on loopback (`http://127.0.0.1:<port>`: openbrain/local/management.py), which checks no
    signature, so requests to it are not signed (`ob-serve` may run without AWS credentials)."""

    _clients: dict[tuple[str, str], Any] = {}  # one boto3 client per endpoint, built on first use

    def __init__(self, endpoint: str, region: str) -> None:
        key = (endpoint, region)
        if key not in self._clients:
            import boto3
            from botocore import UNSIGNED
            from botocore.config import Config

            loopback = urlsplit(endpoint).hostname in LOOPBACK_HOSTS
            self._clients[key] = boto3.client("apigatewaymanagementapi", endpoint_url=endpoint, region_name=region,
                                              config=Config(signature_version=UNSIGNED) if loopback else None)
        self.client = self._clients[key]

    def post(self, connection_id: str, frame: dict[str, Any]) -> None:
        try:
            self.client.post_to_connection(ConnectionId=connection_id, Data=json.dumps(frame).encode())
        except self.client.exceptions.GoneException as exc:
            raise ConnectionGoneError(connection_id) from exc

    def close(self, connection_id: str, code: int, reason: str) -> None:
        with contextlib.suppress(self.client.exceptions.GoneException):
            self.client.delete_connection(ConnectionId=connection_id)


def push(backend: Backend, client_id: str, session_id: str, frame: dict[str, Any]) -> int:
    """Post `frame` to every open connection whose session is `session_id` (and client `client_id`); returns how
    many got it; a gone connection is forgotten. One that cannot be reached otherwise is logged and skipped."""
    from botocore.exceptions import BotoCoreError, ClientError

    stores, region = backend.stores, backend.settings.region
    delivered = 0
    for connection in stores.connections.of_session(client_id, session_id):
        if connection.endpoint is None or (connection.user_expires_at is not None
                                           and connection.user_expires_at <= utcnow()):
            continue  # the widget token of its user expired: it hears nothing more (its next frame closes it)
        try:
            ManagementApi(connection.endpoint, region).post(connection.connection_id, frame)
        except ConnectionGoneError:
            stores.connections.delete(connection.connection_id)
        except (BotoCoreError, ClientError) as exc:
            log.warning("push to a connection failed", extra={"client_id": client_id, "session_id": session_id,
                                                               "connection_id": connection.connection_id,
                                                               "error": type(exc).__name__})
        else:
            delivered += 1
    return delivered
