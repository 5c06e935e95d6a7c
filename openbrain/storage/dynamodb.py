"""The stores (`openbrain.storage.stores`) on DynamoDB, through the PynamoDB models.

Each store is given its model class (the backend passes the models it bound to its tables; a test
may pass a subclass bound elsewhere). The models' methods (`openbrain.storage.orm.base`) map every
PynamoDB and botocore error to ours, so nothing here catches anything but a transaction's refusal.
"""

from __future__ import annotations

import itertools
import json
import logging
import random
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from openbrain.core.clock import utcnow
from openbrain.core.errors import ConflictError, DatabaseError, ItemTooLargeError, NotFoundError
from openbrain.storage.orm import AgentConfig, ChatSession, Client, Connection, Lead, RateCounter
from openbrain.storage.orm.base import TOO_LARGE_MESSAGE, OpenBrainModel, failure
from openbrain.storage.stores import Count, Stores

if TYPE_CHECKING:
    from pynamodb.exceptions import TransactWriteError
    from pynamodb.models import Model
    from pynamodb.transactions import TransactWrite

log = logging.getLogger(__name__)
M = TypeVar("M", bound=OpenBrainModel)
TRANSACTION_ITEMS = 100  # DynamoDB's limit per TransactWriteItems
TRANSACTION_BYTES = 3_000_000  # under DynamoDB's 4 MB per transaction, with room for attribute names
CONFLICT_RETRIES = 8  # a write that met a transaction is sent again up to this often (`_transact`, a single count)
# A turn's commit gives up sooner on its counters: then the turn is stored alone and its counts follow (`commit`).
COMMIT_CONFLICT_RETRIES = 2


def _batches(items: list[AgentConfig], max_items: int) -> list[list[AgentConfig]]:
    batches: list[list[AgentConfig]] = [[]]
    size = 0
    for item in items:
        item_size = len(json.dumps(item.to_snapshot(), ensure_ascii=False).encode())
        if batches[-1] and (len(batches[-1]) >= max_items or size + item_size > TRANSACTION_BYTES):
            batches.append([])
            size = 0
        batches[-1].append(item)
        size += item_size
    return [batch for batch in batches if batch]


def _refused(exc: TransactWriteError) -> list[bool]:
    """For each item of a refused transaction, in order: whether its condition failed."""
    return [reason is not None and reason.code == "ConditionalCheckFailed" for reason in exc.cancellation_reasons or []]


class ItemStore(Generic[M]):
    """A client's items of one model (hash key `client_id`, a range key)."""

    def __init__(self, model: type[M]) -> None:
        self.model = model

    def get(self, client_id: str, key: str) -> M:
        return self.model.get(client_id, key)

    def of_client(self, client_id: str, *, newest_first: bool = False, limit: int | None = None,
                  page_size: int | None = None) -> list[M]:
        items = (item for item in self.model.iter_all(client_id, page_size, newest_first=newest_first)
                 if self._visible(item))
        return list(itertools.islice(items, limit))

    def _visible(self, item: M) -> bool:
        return True

    def save(self, item: M) -> None:
        item.save()

    def delete(self, item: M) -> None:
        item.delete()


class DynamoDBProfileStore(ItemStore[AgentConfig]):
    def __init__(self, model: type[AgentConfig], transaction_items: int = TRANSACTION_ITEMS) -> None:
        super().__init__(model)
        self.transaction_items = transaction_items

    def get_or_default(self, client_id: str, name: str) -> AgentConfig:
        return self.model.get_or_default(client_id, name)

    def save_all(self, client_id: str, items: list[AgentConfig]) -> None:
        from pynamodb.exceptions import TransactWriteError
        from pynamodb.transactions import TransactWrite

        connection = self.model._get_connection().connection
        batches = _batches(items, self.transaction_items)
        for number, batch in enumerate(batches, start=1):
            now = utcnow()
            try:
                with TransactWrite(connection=connection) as transaction:
                    for item in batch:
                        item.updated_at = now
                        transaction.save(item)
            except TransactWriteError as exc:
                conflicts = [item.profile_name for item, failed in zip(batch, _refused(exc), strict=False) if failed]
                written = (f"; {number - 1} of {len(batches)} batches were written before it" if number > 1
                           else "; nothing was written")
                if conflicts:
                    raise ConflictError(
                        f"profile(s) {', '.join(conflicts)} of client {client_id!r} changed while importing"
                        f"{written}; run the import again"
                    ) from exc
                raise DatabaseError(failure(exc, f"write the profiles of {client_id!r}") + written) from exc


class DynamoDBSessionStore(ItemStore[ChatSession]):
    """Sessions: the model's `get` already treats an expired session as missing; listings skip them too."""

    def _visible(self, item: ChatSession) -> bool:
        return not item.expired

    def __init__(self, model: type[ChatSession], counters: type[RateCounter] = RateCounter) -> None:
        super().__init__(model)
        self.counters = counters

    def commit(self, session: ChatSession, lead: Lead | None = None, lead_fields: Collection[str] = (),
               counts: Sequence[Count] = ()) -> None:
        if lead is None and not counts:
            return self.save(session)  # one PutItem: cheaper than a transaction of one
        from pynamodb.exceptions import TransactWriteError

        now = utcnow()
        session.updated_at = now
        if lead is not None:
            lead.updated_at = now
        what = f"ChatSession {session.client_id}/{session.session_id}"

        def write(transaction: TransactWrite) -> None:
            transaction.save(session)
            if lead is None:
                pass
            elif lead.version is None:
                transaction.save(lead)
            else:  # the changed fields only, on whatever version is stored (targets update leads too)
                model = type(lead)
                actions = [getattr(model, name).set(getattr(lead, name)) for name in sorted(lead_fields)]
                transaction.update(lead, [*actions, model.updated_at.set(now)],
                                   condition=model.lead_id.exists(), add_version_condition=False)
            for count in counts:  # no bounds: what a turn used is added, whatever the counters say
                transaction.update(*_counter_update(self.counters, count))

        try:
            _transact(self.model, write, retries=COMMIT_CONFLICT_RETRIES if counts else CONFLICT_RETRIES)
        except TransactWriteError as exc:
            refused = _refused(exc)
            if refused[:1] == [True]:
                raise ConflictError(f"{what} was changed by someone else; reload and try again") from exc
            if lead is not None and refused[1:2] == [True]:
                raise ConflictError(f"Lead {lead.client_id}/{lead.lead_id} was deleted during the turn") from exc
            if counts and _only_conflicts_after(exc, 1 if lead is None else 2):
                # The counters every turn of the client adds to (its day's usage, its quotas) are in other turns'
                # transactions. The turn, whose model already ran, must not be lost for them: it is stored alone,
                # and its counts follow, each in a write of its own (a count lost there is logged, not raised).
                self.commit(session, lead, lead_fields)
                for count in counts:
                    try:
                        DynamoDBCounterStore(self.counters).count([count])
                    except DatabaseError as error:
                        log.warning("a committed turn's count was not written", extra={"error_code": error.code})
                return
            if TOO_LARGE_MESSAGE in (exc.cause_response_message or ""):
                raise ItemTooLargeError(f"{what} is larger than DynamoDB's 400 KB item limit") from exc
            raise DatabaseError(failure(exc, f"save {what}")) from exc

    def clear_outbox(self, session: ChatSession) -> bool:
        from pynamodb.exceptions import UpdateError

        model = self.model
        # A raw UpdateItem: the model's `update` would add 1 to the version, and this write changes nothing
        # a turn reads (a turn that read the session before it may still commit: it carries the outbox).
        connection = model._get_connection()
        try:
            connection.update_item(session.client_id, range_key=session.session_id,
                                   actions=[model.outbox.remove()], condition=model.version == session.version)
        except UpdateError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                return False
            raise DatabaseError(failure(exc, f"clear the outbox of {session.session_id}")) from exc
        session.outbox = None
        return True

    def with_outbox(self, committed_before: datetime) -> Iterator[ChatSession]:
        from pynamodb.exceptions import PynamoDBException

        model = self.model
        try:
            yield from model.scan(model.outbox.exists() & (model.updated_at < committed_before),
                                  attributes_to_get=["client_id", "session_id", "outbox", "version", "updated_at"])
        except PynamoDBException as exc:
            raise DatabaseError(failure(exc, "list the sessions with an outbox")) from exc

    def with_schedules_due(self, due_before: datetime) -> Iterator[ChatSession]:
        from pynamodb.exceptions import PynamoDBException

        model = self.model
        try:
            yield from model.scan(model.next_schedule_at < due_before,
                                  attributes_to_get=["client_id", "session_id", "schedules", "expires_at"])
        except PynamoDBException as exc:
            raise DatabaseError(failure(exc, "list the sessions with a scheduled message due")) from exc

    def of_user(self, client_id: str, user_id: str, *, limit: int | None = None) -> list[ChatSession]:
        from pynamodb.exceptions import PynamoDBException

        from openbrain.storage.orm.chat_session import USER_SESSIONS_INDEX, client_user

        try:  # the model's query, not its index's: a subclass bound to other tables queries its own
            found = (session for session in self.model.query(client_user(client_id, user_id),
                                                             index_name=USER_SESSIONS_INDEX, scan_index_forward=False)
                     if not session.expired)
            return list(itertools.islice(found, limit))
        except PynamoDBException as exc:
            raise DatabaseError(failure(exc, f"list the sessions of a user of {client_id}")) from exc


class DynamoDBClientStore:
    def __init__(self, model: type[Client] = Client) -> None:
        self.model = model

    def get(self, client_id: str) -> Client:
        return self.model.get(client_id)

    def all(self) -> list[Client]:
        return sorted(self.model.scan_all(what="clients"), key=lambda client: client.client_id)

    def allowed_origins(self) -> frozenset[str]:
        scan = self.model.scan_all(attributes_to_get=["allowed_origins"], what="the clients' allowed origins")
        return frozenset(str(origin) for client in scan for origin in client.allowed_origins or [])

    def save(self, client: Client) -> None:
        client.save()

    def set_limits(self, client: Client, limits: Mapping[str, Any]) -> None:
        from pynamodb.exceptions import UpdateError

        model = type(client)
        try:
            stored = model.limits.set(dict(limits)) if limits else model.limits.remove()
            client.update(actions=[stored, model.updated_at.set(utcnow())])
        except UpdateError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                raise ConflictError(f"client {client.client_id} was changed by someone else; try again") from exc
            raise DatabaseError(failure(exc, f"save the limits of {client.client_id}")) from exc

    def delete(self, client: Client) -> None:
        client.delete()


class DynamoDBConnectionStore:
    """Connections: every change after `save` is one UpdateItem of the attributes it is about (no version
    bump: the turn, the ack and the session are independent), conditional on the item existing."""

    def __init__(self, model: type[Connection] = Connection) -> None:
        self.model = model

    def get(self, connection_id: str) -> Connection:
        connection = self.model.get(connection_id)
        if connection.expired:
            raise NotFoundError(f"Connection {connection_id} not found")
        return connection

    def save(self, connection: Connection) -> None:
        connection.save()

    def _update(self, connection: Connection, actions: list[Any], doing: str, condition: Any = None) -> bool:
        """Whether the update was made (False: the connection is gone, or `condition` failed)."""
        from pynamodb.exceptions import UpdateError

        model = self.model
        exists = model.connection_id.exists()
        try:
            model._get_connection().update_item(connection.connection_id, actions=actions,
                                                condition=exists if condition is None else exists & condition)
        except UpdateError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                return False
            raise DatabaseError(failure(exc, f"{doing} of connection {connection.connection_id}")) from exc
        return True

    def acknowledge(self, connection: Connection) -> None:
        model = self.model
        actions = [model.acked.set(True)]
        actions += [getattr(model, name).set(getattr(connection, name))
                    for name in ("end_user_id", "user_profile", "user_expires_at", "identity_secret_ref")
                    if getattr(connection, name) is not None]
        if not self._update(connection, actions, "record the ack"):
            raise NotFoundError(f"Connection {connection.connection_id} not found")
        connection.acked = True

    def start_turn(self, connection: Connection, stale_before: datetime) -> bool:
        model = self.model
        now = utcnow()
        free = model.turn_started_at.does_not_exist() | (model.turn_started_at < stale_before)
        if not self._update(connection, [model.turn_started_at.set(now)], "start a turn", free):
            return False
        connection.turn_started_at = now
        return True

    def finish_turn(self, connection: Connection, session_id: str | None) -> None:
        model = self.model
        actions: list[Any] = [model.turn_started_at.remove()]
        if session_id:
            actions.append(model.session_id.set(session_id))
            connection.session_id = session_id
        self._update(connection, actions, "end the turn")  # a connection closed meanwhile: nothing to do
        connection.turn_started_at = None

    def set_session(self, connection: Connection, session_id: str) -> None:
        self._update(connection, [self.model.session_id.set(session_id)], "remember the session")
        connection.session_id = session_id

    def of_session(self, client_id: str, session_id: str) -> list[Connection]:
        from pynamodb.exceptions import PynamoDBException

        from openbrain.storage.orm.connection import SESSION_CONNECTIONS_INDEX

        model = self.model
        try:  # the model's query, not its index's: a subclass bound to other tables queries its own
            return [connection for connection in model.query(session_id, filter_condition=model.client_id == client_id,
                                                              index_name=SESSION_CONNECTIONS_INDEX)
                    if not connection.expired]
        except PynamoDBException as exc:
            raise DatabaseError(failure(exc, f"list the connections of a session of {client_id}")) from exc

    def delete(self, connection_id: str) -> None:
        from pynamodb.exceptions import DeleteError

        try:
            self.model._get_connection().delete_item(connection_id)
        except DeleteError as exc:
            raise DatabaseError(failure(exc, f"delete connection {connection_id}")) from exc

    def unacked_before(self, connected_before: datetime) -> Iterator[Connection]:
        from pynamodb.exceptions import PynamoDBException

        model = self.model
        try:
            yield from model.scan((model.acked == False) & (model.connected_at < connected_before))  # noqa: E712
        except PynamoDBException as exc:
            raise DatabaseError(failure(exc, "list the unacknowledged connections")) from exc


class DynamoDBCounterStore:
    """The counters: each count an UpdateItem (ADD, with its bound as the condition), several (a turn's) in one
    TransactWriteItems."""

    def __init__(self, model: type[RateCounter] = RateCounter) -> None:
        self.model = model

    def count(self, counts: Sequence[Count]) -> list[int]:
        from pynamodb.exceptions import TransactWriteError, UpdateError

        if len(counts) == 1:  # one UpdateItem: half the write units of a transaction of one (a refusal's count)
            item, actions, condition = _counter_update(self.model, counts[0])
            for attempt in range(CONFLICT_RETRIES + 1):
                try:
                    self.model._get_connection().update_item(item.key, actions=actions, condition=condition)
                    return []
                except UpdateError as exc:
                    if exc.cause_response_code == "ConditionalCheckFailedException":
                        return [0]
                    # the counter is in a transaction (a turn's commit): sent again, as `_transact` does
                    if exc.cause_response_code != "TransactionConflictException" or attempt == CONFLICT_RETRIES:
                        raise DatabaseError(failure(exc, "count the turn against the rate limits")) from exc
                    _pause(attempt)

        def write(transaction: TransactWrite) -> None:
            for count in counts:
                transaction.update(*_counter_update(self.model, count))

        try:
            _transact(self.model, write)
        except TransactWriteError as exc:
            refused = _refused(exc)
            if any(refused):
                return [index for index, failed in enumerate(refused) if failed]
            raise DatabaseError(failure(exc, "count the turn against the rate limits")) from exc
        return []

    def read(self, keys: Sequence[str]) -> dict[str, RateCounter]:
        from pynamodb.exceptions import PynamoDBException

        try:  # PynamoDB asks for 100 keys a request and asks again for what DynamoDB left unprocessed
            return {counter.key: counter for counter in self.model.batch_get(list(dict.fromkeys(keys)))}
        except PynamoDBException as exc:
            raise DatabaseError(failure(exc, "read the counters")) from exc


def _counter_update(model: type[RateCounter], count: Count) -> tuple[RateCounter, list[Any], Any]:
    """The UpdateItem of `count`: ADD each amount, keep until its expiry, if each bound is not reached."""
    actions: list[Any] = [getattr(model, name).add(amount) for name, amount in count.add.items()]
    actions.append(model.expires_at.set(datetime.fromtimestamp(count.expires_at, UTC)))
    condition = None
    for name, bound in count.below.items():
        attribute = getattr(model, name)
        under = attribute.does_not_exist() | (attribute < bound)
        condition = under if condition is None else condition & under
    return model(count.key), actions, condition


def _transact(model: type[Model], write: Callable[[TransactWrite], None], retries: int = CONFLICT_RETRIES) -> None:
    """One TransactWriteItems of what `write` puts in it, on `model`'s connection; sent again (fresh, after a
    short random pause) up to `retries` times while DynamoDB cancels it only for meeting another transaction on
    one of its items (`TransactionConflict`: the counters every turn of a client adds to meet often under load).
    A cancelled transaction wrote nothing, so sending it again is safe. Anything else is raised
    (`TransactWriteError`).

    Each attempt carries its own ClientRequestToken: botocore resends a request whose answer was lost with the
    same token, which DynamoDB then answers without applying the transaction twice (a counter added twice, a
    stored turn reported as a conflict)."""
    from pynamodb.exceptions import TransactWriteError
    from pynamodb.transactions import TransactWrite

    for attempt in range(retries + 1):
        try:
            with TransactWrite(connection=model._get_connection().connection,
                               client_request_token=uuid.uuid4().hex) as transaction:
                write(transaction)
            return
        except TransactWriteError as exc:
            codes = {reason.code for reason in exc.cancellation_reasons or [] if reason is not None}
            if any(_refused(exc)) or "TransactionConflict" not in codes or attempt == retries:
                raise
            _pause(attempt)


def _only_conflicts_after(exc: TransactWriteError, first: int) -> bool:
    """Whether a cancelled transaction met other transactions on its items from index `first` on, and nothing
    else stopped it."""
    reasons = exc.cancellation_reasons or []
    codes = [reason.code if reason is not None else "None" for reason in reasons]
    return (len(codes) > first and all(code == "None" for code in codes[:first])
            and all(code in {"None", "TransactionConflict"} for code in codes[first:])
            and "TransactionConflict" in codes[first:])


def _pause(attempt: int) -> None:
    """A short random pause before sending again a write that met a transaction (`attempt`: 0 the first time)."""
    time.sleep(random.uniform(0, 0.01 * 2 ** attempt))  # noqa: S311 (jitter, not a secret)


def dynamodb_stores(
    profiles: type[AgentConfig] = AgentConfig,
    sessions: type[ChatSession] = ChatSession,
    leads: type[Lead] = Lead,
    clients: type[Client] = Client,
    connections: type[Connection] = Connection,
    counters: type[RateCounter] = RateCounter,
) -> Stores:
    """The stores over the given (bound) models."""
    return Stores(
        profiles=DynamoDBProfileStore(profiles),
        sessions=DynamoDBSessionStore(sessions, counters),
        leads=ItemStore(leads),
        clients=DynamoDBClientStore(clients),
        connections=DynamoDBConnectionStore(connections),
        counters=DynamoDBCounterStore(counters),
    )
