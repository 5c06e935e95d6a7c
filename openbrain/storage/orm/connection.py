"""Connection: one open WebSocket of the streaming API (api/websocket.py), across Lambda invocations.

Keys: hash `connection_id` (API Gateway's, or `ob-serve`'s). The client and key kind come from the key given
on `$connect` and never from a frame; `origin` is the page's, `endpoint` the Management API URL that posts to
it (`https://<domain>/<stage>`; under `ob-serve` the loopback Management API of the process holding the socket:
openbrain/local/management.py). `acked` turns true with the client's ack; `turn_started_at` is set while a turn
runs (one at a time: a conditional write), `session_id` is the session of the connection's last turn, or the one
a `session` frame read (a chat frame without `sessionId` continues it). `session_id` keys the global secondary
index `SESSION_CONNECTIONS_INDEX`, which finds a session's open connections to push a frame to (api/websocket.py
`push`): a connection without a session is not in it (a sparse index), and it projects only what a push
reads. The ack may carry an end-user identity (services/identity.py): the verified `end_user_id` and the profile
a widget token was scoped to (`user_profile`) are the connection's from then on, until the token expires
(`user_expires_at`) or the client's identity secret that verified them (`identity_secret_ref`) is rotated.
`expires_at` is a DynamoDB TTL attribute: API Gateway closes any connection after 2 hours, so a record its
`$disconnect` missed goes too.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pynamodb.attributes import BooleanAttribute, TTLAttribute, UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.indexes import GlobalSecondaryIndex, IncludeProjection

from openbrain.core.clock import utcnow
from openbrain.storage.orm.base import OpenBrainModel

CONNECTION_LIFETIME = timedelta(hours=2)  # API Gateway's longest WebSocket connection
SESSION_CONNECTIONS_INDEX = "session_id"
SESSION_CONNECTION_ATTRIBUTES = ["client_id", "endpoint", "expires_at", "user_expires_at"]


def _expiry() -> datetime:
    return utcnow() + CONNECTION_LIFETIME


class SessionConnections(GlobalSecondaryIndex["Connection"]):
    """The open connections of one session."""

    class Meta:
        index_name = SESSION_CONNECTIONS_INDEX
        projection = IncludeProjection(SESSION_CONNECTION_ATTRIBUTES)

    session_id = UnicodeAttribute(hash_key=True)


class Connection(OpenBrainModel):
    """An open WebSocket: its client, key kind, origin, ack, turn in flight, session and TTL."""

    class Meta:
        table_name = "openbrain-connections"
        region = "us-east-1"
        billing_mode = "PAY_PER_REQUEST"

    connection_id = UnicodeAttribute(hash_key=True)
    client_id = UnicodeAttribute()
    key_kind = UnicodeAttribute()
    origin = UnicodeAttribute(null=True)
    endpoint = UnicodeAttribute(null=True)
    acked = BooleanAttribute(default=False)
    connected_at = UTCDateTimeAttribute(default_for_new=utcnow)
    turn_started_at = UTCDateTimeAttribute(null=True)
    session_id = UnicodeAttribute(null=True)
    by_session = SessionConnections()
    end_user_id = UnicodeAttribute(null=True)
    user_profile = UnicodeAttribute(null=True)
    user_expires_at = UTCDateTimeAttribute(null=True)
    identity_secret_ref = UnicodeAttribute(null=True)  # the client's secret that verified the user, while in force
    expires_at = TTLAttribute(default_for_new=_expiry)

    @property
    def expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= utcnow()
