"""The contract of the client store, scans included, on every target DynamoDB."""

from __future__ import annotations

import pytest
from support.conformance import counting, twin

from openbrain.core.errors import ConflictError, ItemTooLargeError, NotFoundError
from openbrain.storage.orm import Client
from openbrain.storage.stores import Stores

pytestmark = pytest.mark.integration


def test_save_get_and_delete_a_client(stores: Stores, client_id: str) -> None:
    stores.clients.save(Client(client_id, display_name="Acme", allowed_origins=["https://acme.example"]))

    stored = stores.clients.get(client_id)
    assert (stored.display_name, list(stored.allowed_origins), stored.version) == ("Acme", ["https://acme.example"], 1)
    stores.clients.delete(stored)
    with pytest.raises(NotFoundError):
        stores.clients.get(client_id)


def test_client_writes_are_optimistic(stores: Stores, client_id: str) -> None:
    # given
    first = Client(client_id, display_name="first")
    stores.clients.save(first)
    mine, theirs = stores.clients.get(client_id), stores.clients.get(client_id)
    theirs.display_name = "theirs"
    stores.clients.save(theirs)

    # then: a stale save, a stale delete and a new client with a taken id are conflicts
    mine.display_name = "mine"
    with pytest.raises(ConflictError):
        stores.clients.save(mine)
    with pytest.raises(ConflictError):
        stores.clients.delete(mine)
    with pytest.raises(ConflictError):
        stores.clients.save(twin(first))
    assert stores.clients.get(client_id).display_name == "theirs"


def test_listing_clients_scans_every_1_mb_page(stores: Stores, client_id: str) -> None:
    # given: clients worth 2.4 MB or more
    ids = [f"{client_id}-{n:02d}" for n in range(24)]
    for n, each in enumerate(ids):
        stores.clients.save(Client(each, display_name="d" * 100_000, allowed_origins=[f"https://{n}.{client_id}.example"]))

    # when
    with counting("Scan") as pages:
        listed = [client.client_id for client in stores.clients.all()]
    origins = stores.clients.allowed_origins()

    # then
    assert listed == sorted(listed) and set(ids) <= set(listed)
    assert len(pages) >= 3
    assert {f"https://{n}.{client_id}.example" for n in range(24)} <= origins


def test_a_client_over_400_kb_is_refused_with_our_error(stores: Stores, client_id: str) -> None:
    with pytest.raises(ItemTooLargeError, match="400 KB"):
        stores.clients.save(Client(client_id, display_name="x" * 410_000))
    with pytest.raises(NotFoundError):
        stores.clients.get(client_id)
