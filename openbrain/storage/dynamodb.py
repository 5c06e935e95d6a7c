"""The stores (`openbrain.storage.stores`) on DynamoDB, through the PynamoDB models.

Each store is given its model class (the backend passes the four models it bound to its tables; a test
may pass a subclass bound elsewhere). The models' methods (`openbrain.storage.orm.base`) map every
PynamoDB and botocore error to ours, so nothing here catches anything but a transaction's refusal.
"""

from __future__ import annotations

import itertools
import json
from typing import Generic, TypeVar

from openbrain.core.clock import utcnow
from openbrain.core.errors import ConflictError, UpstreamError
from openbrain.storage.orm import AgentConfig, ChatSession, Client, Lead
from openbrain.storage.orm.base import OpenBrainModel
from openbrain.storage.stores import Stores

M = TypeVar("M", bound=OpenBrainModel)
TRANSACTION_ITEMS = 100  # DynamoDB's limit per TransactWriteItems
TRANSACTION_BYTES = 3_000_000  # under DynamoDB's 4 MB per transaction, with room for attribute names


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
                reasons = exc.cancellation_reasons or []
                conflicts = [item.profile_name for item, reason in zip(batch, reasons, strict=False)
                             if reason is not None and reason.code == "ConditionalCheckFailed"]
                written = (f"; {number - 1} of {len(batches)} batches were written before it" if number > 1
                           else "; nothing was written")
                if conflicts:
                    raise ConflictError(
                        f"profile(s) {', '.join(conflicts)} of client {client_id!r} changed while importing"
                        f"{written}; run the import again"
                    ) from exc
                code = exc.cause_response_code or type(exc).__name__
                raise UpstreamError(
                    f"DynamoDB could not write the profiles of {client_id!r} ({code}){written}"
                ) from exc


class DynamoDBSessionStore(ItemStore[ChatSession]):
    """Sessions: the model's `get` already treats an expired session as missing; listings skip them too."""

    def _visible(self, item: ChatSession) -> bool:
        return not item.expired


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

    def delete(self, client: Client) -> None:
        client.delete()


def dynamodb_stores(
    profiles: type[AgentConfig] = AgentConfig,
    sessions: type[ChatSession] = ChatSession,
    leads: type[Lead] = Lead,
    clients: type[Client] = Client,
) -> Stores:
    """The four stores over the given (bound) models."""
    return Stores(
        profiles=DynamoDBProfileStore(profiles),
        sessions=DynamoDBSessionStore(sessions),
        leads=ItemStore(leads),
        clients=DynamoDBClientStore(clients),
    )
