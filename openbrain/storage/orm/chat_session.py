"""ChatSession: one conversation's stored state.

Keys: hash `client_id`, range `session_id` (a ULID, fresh per instance). `memory` holds the compressed,
versioned JSON of the conversation's langchain messages (see `openbrain.storage.memory_codec`), `config_snapshot` the
AgentConfig the session was started with, `context` the key/values tools see but the model never does.
`outbox` holds the events of the latest committed turn(s) until they are published
(docs/events.md); `schedules` its scheduled messages (docs/scheduling.md). `expires_at` is a DynamoDB TTL attribute
refreshed every turn; reads treat an expired item as missing even before DynamoDB's TTL sweeper deletes it.

A session started by a verified end user is bound to them (`end_user_id`; domain/identity.py), and
`client_user` = `<client_id>#<user_id>` keys the global secondary index `USER_SESSIONS_INDEX` (range
`updated_at`), which lists a user's sessions newest first. Sessions without a user have no `client_user`, so
the index holds only bound ones (a sparse index); it projects what a listing shows, never the memory.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any, Self

from pynamodb.attributes import (
    BinaryAttribute,
    JSONAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.indexes import GlobalSecondaryIndex, IncludeProjection

from openbrain.core.clock import utcnow
from openbrain.core.errors import NotFoundError
from openbrain.core.ids import is_id, new_id
from openbrain.storage.orm.base import OpenBrainModel

MAX_RECENT_EVENTS = 50
# What a session item may weigh: DynamoDB refuses 400 KB; 50 KB stay free for attribute names and slack.
ITEM_SIZE_TARGET = 350_000
_FIXED_ATTRIBUTES_BYTES = 2_000  # keys, ids, timestamps, counters and attribute names


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class CompactJSONAttribute(JSONAttribute):
    """JSON stored as compact UTF-8 (PynamoDB's own escapes non-ASCII text, up to 6 bytes a character)."""

    def serialize(self, value: Any) -> str | None:
        return None if value is None else _json(value)


USER_SESSIONS_INDEX = "client_user-updated_at"
USER_SESSION_ATTRIBUTES = ["profile_name", "turn_count", "ended_at", "expires_at", "created_at", "end_user_id"]


def client_user(client_id: str, user_id: str) -> str:
    """The index key of a user's sessions: client ids have no '#', so it splits at the first one."""
    return f"{client_id}#{user_id}"


class UserSessions(GlobalSecondaryIndex["ChatSession"]):
    """A client's sessions of one end user, by last update."""

    class Meta:
        index_name = USER_SESSIONS_INDEX
        projection = IncludeProjection(USER_SESSION_ATTRIBUTES)

    client_user = UnicodeAttribute(hash_key=True)
    updated_at = UTCDateTimeAttribute(range_key=True)


class ChatSession(OpenBrainModel):
    """A conversation: memory, config snapshot, tool context, lead id, turn count and TTL."""

    class Meta:
        table_name = "openbrain-chat-sessions"
        region = "us-east-1"
        billing_mode = "PAY_PER_REQUEST"

    client_id = UnicodeAttribute(hash_key=True)
    session_id = UnicodeAttribute(range_key=True, default_for_new=new_id)
    profile_name = UnicodeAttribute()
    memory = BinaryAttribute(legacy_encoding=False, null=True)
    config_snapshot = CompactJSONAttribute(default=dict)
    context = CompactJSONAttribute(default=dict)
    lead_id = UnicodeAttribute(null=True)
    turn_count = NumberAttribute(default=0)
    trimmed_messages = NumberAttribute(default=0)
    recent_events = CompactJSONAttribute(default=list)
    # Events committed with the session and not yet published: [{"type": detail type, "detail": {...}}]
    outbox = CompactJSONAttribute(null=True)
    ended_at = UTCDateTimeAttribute(null=True)
    expires_at = TTLAttribute(null=True)
    end_user_id = UnicodeAttribute(null=True)
    client_user = UnicodeAttribute(null=True)
    user_sessions = UserSessions()
    # The session's active scheduled messages (conversation/schedules.py) and the soonest time one is due, which
    # ob-serve's scheduler looks for (on AWS, EventBridge Scheduler keeps the times: this is what lists them).
    schedules = CompactJSONAttribute(null=True)
    next_schedule_at = UTCDateTimeAttribute(null=True)

    def bind_user(self, user_id: str | None) -> None:
        """Bind the session to the verified end user `user_id` (None: to nobody)."""
        self.end_user_id = user_id
        self.client_user = client_user(self.client_id, user_id) if user_id is not None else None

    @property
    def expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= utcnow()

    def refresh_ttl(self, retention: timedelta) -> None:
        """Push expiry to `retention` from now (called on every turn)."""
        self.expires_at = utcnow() + retention

    def record_events(self, events: list[dict[str, Any]]) -> None:
        """Remember the latest events (type, id, time) so a UI can show what a session did."""
        self.recent_events = (list(self.recent_events or []) + events)[-MAX_RECENT_EVENTS:]

    def memory_budget(self, policy_bytes: int) -> int:
        """How many bytes `memory` may take so the whole item stays under `ITEM_SIZE_TARGET`."""
        others = sum(len(_json(value).encode())
                     for value in (self.config_snapshot, self.context, self.recent_events, self.outbox, self.schedules))
        return max(1_000, min(policy_bytes, ITEM_SIZE_TARGET - others - _FIXED_ATTRIBUTES_BYTES))

    @classmethod
    def get(  # type: ignore[override]
        cls,
        hash_key: Any,
        range_key: Any = None,
        consistent_read: bool = True,
        attributes_to_get: Any = None,
    ) -> Self:
        """Session `range_key` of client `hash_key`; `session_not_found` if it is missing or expired, or if the
        id could name no session (it never reaches DynamoDB, whose key limits would make bad input a 5xx)."""
        session_id = existing_session_id(hash_key, range_key)
        try:
            session = super().get(hash_key, session_id, consistent_read, attributes_to_get)
        except NotFoundError as exc:
            raise session_not_found(hash_key, range_key) from exc
        if session.expired:
            raise session_not_found(hash_key, range_key)
        return session

    @classmethod
    def get_all(cls, client_id: str, page_size: int | None = None) -> list[Self]:
        """Every unexpired session of one client (oldest first: ids are ULIDs)."""
        return [s for s in cls.iter_all(client_id, page_size=page_size) if not s.expired]

    @property
    def ended(self) -> bool:
        return self.ended_at is not None


def session_not_found(client_id: str, session_id: object) -> NotFoundError:
    """The one way a session is reported missing (docs/api.md): whether it is missing, expired, could name no
    session, or is another client's or another end user's, which must read the same."""
    return NotFoundError(f"session {str(session_id)[:64]!r} not found for client {client_id!r} (or it expired)")


def existing_session_id(client_id: str, session_id: str | None) -> str:
    """`session_id` if it could name a stored session (`core.ids.is_id`), else `session_not_found`."""
    if session_id is None or not is_id(session_id):
        raise session_not_found(client_id, session_id)
    return session_id
