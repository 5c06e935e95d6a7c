"""What the library needs from storage, as interfaces: one store per table, and the `Stores` bundle.

Services take a `Stores` (the backend builds it: `backend.stores`) and never touch a table themselves.
A store hands out the ORM's model instances (PynamoDB models stay the ORM: STYLE.md) and raises only
our errors (`openbrain.core.errors`):

- `get` of a missing item (or an expired session) is `NotFoundError`;
- `save` is optimistic: saving a copy older than the stored item, or a new item whose key exists, is
  `ConflictError`; an item over DynamoDB's 400 KB limit is `ItemTooLargeError` (an `InvalidInputError`);
- `delete` is against the version that was read: a changed or vanished item is `ConflictError`;
- listings follow DynamoDB's pages (1 MB each) to the end;
- anything else the database says is `DatabaseError` (an `UpstreamError`; the API answers it with a generic 502).

`tests/storage/conformance/` proves every implementation keeps this contract (docs/storage.md).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeVar

from openbrain.storage.orm import AgentConfig, ChatSession, Client, Connection, Lead, RateCounter

Item = TypeVar("Item")


class ClientItemStore(Protocol[Item]):
    """The items of one kind that belong to a client (range key: a ULID or a profile name)."""

    def get(self, client_id: str, key: str) -> Item:
        """The item `key` of `client_id`; `NotFoundError` if there is none."""
        ...

    def of_client(self, client_id: str, *, newest_first: bool = False, limit: int | None = None,
                  page_size: int | None = None) -> list[Item]:
        """The client's items in key order (`newest_first`: reversed), at most `limit` of them, read
        `page_size` items per request (every page up to the end or the limit)."""
        ...

    def save(self, item: Item) -> None:
        """Store `item` if nobody stored a newer version of it since it was read (`ConflictError`)."""
        ...

    def delete(self, item: Item) -> None:
        """Delete `item` if it is still the version that was read (`ConflictError` otherwise)."""
        ...


class ProfileStore(ClientItemStore[AgentConfig], Protocol):
    """A client's agent profiles (AgentConfig), by profile name."""

    def get_or_default(self, client_id: str, name: str) -> AgentConfig:
        """The stored profile; for `default`, the built-in defaults (version None) until one is stored."""
        ...

    def save_all(self, client_id: str, items: list[AgentConfig]) -> None:
        """Store the client's `items` together, each only if still at the version it was read at: in
        transactions of at most 100 items and 3 MB, each all or nothing. A refused transaction is a
        `ConflictError` naming the changed profiles and saying how many transactions were written before."""
        ...


class SessionStore(ClientItemStore[ChatSession], Protocol):
    """A client's chat sessions, by session id. An expired session (its TTL passed) reads as missing and is
    not listed, even before DynamoDB's TTL sweeper deletes it."""

    def commit(self, session: ChatSession, lead: Lead | None = None, lead_fields: Collection[str] = (),
               counts: Sequence[Count] = ()) -> None:
        """A chat turn's writes, all or nothing, in one request: `session` (as `save`: `ConflictError` if another
        turn saved it first); if given, its `lead`: a new one, or the stored one with only `lead_fields` changed
        (whatever else changed it meanwhile, e.g. a target marking it delivered, is kept); and `counts` (the
        turn's usage and rate-limit counters, added as `CounterStore.count` adds them; a turn's counts have no
        bound: what it used is counted, whatever the counters say)."""
        ...

    def clear_outbox(self, session: ChatSession) -> bool:
        """Remove the outbox of `session` if the stored session is still the version given (its outbox was
        published); False if it changed (the turn that changed it carried the outbox over)."""
        ...

    def with_outbox(self, committed_before: datetime) -> Iterator[ChatSession]:
        """Every session (of any client) whose outbox waits since before `committed_before` (a scan)."""
        ...

    def with_schedules_due(self, due_before: datetime) -> Iterator[ChatSession]:
        """Every session (of any client) with a scheduled message due before `due_before` (a scan: ob-serve's
        scheduler; on AWS, EventBridge Scheduler keeps the times). Each has only its keys and `schedules`."""
        ...

    def of_user(self, client_id: str, user_id: str, *, limit: int | None = None) -> list[ChatSession]:
        """The client's sessions bound to end user `user_id`, last updated first, at most `limit` (a query of
        the user index: each has only the attributes the index projects, `USER_SESSION_ATTRIBUTES`)."""
        ...


class LeadStore(ClientItemStore[Lead], Protocol):
    """A client's leads, by lead id."""


class ClientStore(Protocol):
    """The tenants. Listing them is a scan: for operators and the CORS origin list, not per request."""

    def get(self, client_id: str) -> Client:
        ...

    def all(self) -> list[Client]:
        """Every client, by id (every page of a scan)."""
        ...

    def allowed_origins(self) -> frozenset[str]:
        """Every origin some client allows (a scan of that one attribute)."""
        ...

    def save(self, client: Client) -> None:
        ...

    def set_limits(self, client: Client, limits: Mapping[str, Any]) -> None:
        """Store `limits` as the client's `limits` (only that attribute), if the client is still the version
        that was read (`ConflictError`)."""
        ...

    def delete(self, client: Client) -> None:
        ...


class ConnectionStore(Protocol):
    """The open WebSocket connections (api/websocket.py). Their writes are single conditional updates, so
    Lambda invocations handling frames of one connection at once cannot both start a turn."""

    def get(self, connection_id: str) -> Connection:
        """The connection; `NotFoundError` if there is none (closed, swept, or expired)."""
        ...

    def save(self, connection: Connection) -> None:
        """Store a new connection (`$connect`)."""
        ...

    def acknowledge(self, connection: Connection) -> None:
        """Mark the connection acknowledged, with the end user its ack verified (`end_user_id`, `user_profile`,
        `user_expires_at`, `identity_secret_ref`)."""
        ...

    def start_turn(self, connection: Connection, stale_before: datetime) -> bool:
        """Mark a turn in flight, unless one is (one started before `stale_before` counts as crashed, not in
        flight); False if one is."""
        ...

    def finish_turn(self, connection: Connection, session_id: str | None) -> None:
        """Clear the turn in flight and remember `session_id` (when given) as the connection's session."""
        ...

    def set_session(self, connection: Connection, session_id: str) -> None:
        """Remember `session_id` as the connection's session (a `session` frame: the client resumed it), so
        frames pushed to that session reach it; a connection closed meanwhile is no error."""
        ...

    def of_session(self, client_id: str, session_id: str) -> list[Connection]:
        """The open connections of `client_id` whose session is `session_id` (a query of the session index: each
        has only the attributes the index projects, `SESSION_CONNECTION_ATTRIBUTES`); never another client's."""
        ...

    def delete(self, connection_id: str) -> None:
        """Forget the connection (gone already is no error)."""
        ...

    def unacked_before(self, connected_before: datetime) -> Iterator[Connection]:
        """Every connection not acknowledged that connected before `connected_before` (a scan)."""
        ...


@dataclass(frozen=True)
class Count:
    """Add `add` (attribute -> amount) to the counters of `key`, if each attribute of `below` is under its
    bound first (a missing counter is 0); keep the item until `expires_at` (epoch seconds)."""

    key: str
    add: Mapping[str, int]
    expires_at: int
    below: Mapping[str, int] = field(default_factory=dict)


class CounterStore(Protocol):
    """The counters of the rate limits and quotas (services/limits.py)."""

    def count(self, counts: Sequence[Count]) -> list[int]:
        """Apply every count, all or nothing, in one request: [] when all were applied, else the indexes of
        the counts whose bound was reached (then nothing was written)."""
        ...

    def read(self, keys: Sequence[str]) -> dict[str, RateCounter]:
        """The counters of `keys` that exist, by key (a missing one was never counted, or expired)."""
        ...


@dataclass(frozen=True)
class Stores:
    """One store per table, as a backend provides them."""

    profiles: ProfileStore
    sessions: SessionStore
    leads: LeadStore
    clients: ClientStore
    connections: ConnectionStore
    counters: CounterStore
