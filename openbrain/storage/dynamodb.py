"""The stores (`openbrain.storage.stores`) on DynamoDB, through the PynamoDB models.

Each store is given its model class (the backend passes the four models it bound to its tables; a test
may pass a subclass bound elsewhere). The models' methods (`openbrain.storage.orm.base`) map every
PynamoDB and botocore error to ours, so nothing here catches anything.
"""

from __future__ import annotations

import itertools
from typing import Generic, TypeVar

from openbrain.storage.orm import AgentConfig, ChatSession, Client, Lead
from openbrain.storage.orm.base import OpenBrainModel
from openbrain.storage.stores import Stores

M = TypeVar("M", bound=OpenBrainModel)


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
    def get_or_default(self, client_id: str, name: str) -> AgentConfig:
        return self.model.get_or_default(client_id, name)


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
