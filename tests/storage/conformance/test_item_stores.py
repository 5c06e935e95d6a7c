"""The contract of the client-item stores (profiles, sessions, leads) on every target DynamoDB."""

from __future__ import annotations

import pytest
from support.conformance import KINDS, MB, Kind, by_kind, counting, twin

from openbrain.core.errors import ConflictError, ItemTooLargeError, NotFoundError
from openbrain.storage.stores import Stores

pytestmark = pytest.mark.integration


@by_kind()
def test_save_then_get_returns_the_stored_item(stores: Stores, client_id: str, kind: Kind) -> None:
    # given
    store = kind.store(stores)
    item = kind.make(client_id, 1)
    setattr(item, kind.field, "stored value")

    # when
    store.save(item)
    fetched = store.get(client_id, kind.key(item))

    # then
    assert (fetched.client_id, kind.key(fetched)) == (client_id, kind.key(item))
    assert getattr(fetched, kind.field) == "stored value"
    assert fetched.version == item.version == 1


@by_kind()
def test_a_missing_item_is_not_found(stores: Stores, client_id: str, kind: Kind) -> None:
    store = kind.store(stores)
    store.save(kind.make(client_id, 1))

    with pytest.raises(NotFoundError):
        store.get(client_id, "nothing-here")
    with pytest.raises(NotFoundError):
        store.get(client_id + "-other", kind.key(kind.make(client_id, 1)))


@by_kind()
def test_saving_a_stale_copy_is_a_conflict_and_keeps_the_newer_item(stores: Stores, client_id: str,
                                                                     kind: Kind) -> None:
    # given: two readers of one item
    store = kind.store(stores)
    item = kind.make(client_id, 1)
    store.save(item)
    mine, theirs = (store.get(client_id, kind.key(item)) for _ in range(2))

    # when: both change it, theirs first
    setattr(theirs, kind.field, "theirs")
    store.save(theirs)
    setattr(mine, kind.field, "mine")

    # then
    with pytest.raises(ConflictError):
        store.save(mine)
    stored = store.get(client_id, kind.key(item))
    assert getattr(stored, kind.field) == "theirs" and stored.version == 2


@by_kind()
def test_a_new_item_never_overwrites_a_stored_one(stores: Stores, client_id: str, kind: Kind) -> None:
    store = kind.store(stores)
    item = kind.make(client_id, 1)
    setattr(item, kind.field, "first")
    store.save(item)
    second = twin(item)
    setattr(second, kind.field, "second")

    with pytest.raises(ConflictError):
        store.save(second)
    assert getattr(store.get(client_id, kind.key(item)), kind.field) == "first"


@by_kind()
def test_delete_is_against_the_version_read(stores: Stores, client_id: str, kind: Kind) -> None:
    # given
    store = kind.store(stores)
    item = kind.make(client_id, 1)
    store.save(item)
    stale = store.get(client_id, kind.key(item))
    current = store.get(client_id, kind.key(item))
    setattr(current, kind.field, "changed")
    store.save(current)

    # then: a stale copy cannot delete it, the current one can, and a second delete finds it changed
    with pytest.raises(ConflictError):
        store.delete(stale)
    store.delete(current)
    with pytest.raises(NotFoundError):
        store.get(client_id, kind.key(item))
    with pytest.raises(ConflictError):
        store.delete(current)


@by_kind()
def test_a_client_lists_only_its_own_items_in_key_order(stores: Stores, client_id: str, kind: Kind) -> None:
    # given
    store = kind.store(stores)
    items = [kind.make(client_id, n) for n in range(5)]
    for item in items:
        store.save(item)
    store.save(kind.make(client_id + "-other", 9))
    keys = sorted(kind.key(item) for item in items)

    # then
    assert [kind.key(i) for i in store.of_client(client_id)] == keys
    assert [kind.key(i) for i in store.of_client(client_id, newest_first=True)] == keys[::-1]
    assert [kind.key(i) for i in store.of_client(client_id, newest_first=True, limit=2, page_size=1)] == keys[:-3:-1]
    assert store.of_client(client_id + "-none") == []


@by_kind()
def test_a_listing_follows_every_1_mb_page_to_the_end(stores: Stores, client_id: str, kind: Kind) -> None:
    # given: items worth 2.4 MB or more, so DynamoDB answers a query in several pages
    store = kind.store(stores)
    count = -(-int(2.4 * MB) // kind.big_bytes)
    keys = set()
    for n in range(count):
        item = kind.big(client_id, n)
        store.save(item)
        keys.add(kind.key(item))

    # when
    with counting("Query") as pages:
        listed = store.of_client(client_id)

    # then
    assert {kind.key(item) for item in listed} == keys
    assert len(pages) >= 3


@by_kind([kind for kind in KINDS if kind.can_exceed_400_kb])
def test_an_item_over_400_kb_is_refused_with_our_error(stores: Stores, client_id: str, kind: Kind) -> None:
    store = kind.store(stores)
    item = kind.make(client_id, 1)
    setattr(item, kind.field, "x" * 410_000)

    with pytest.raises(ItemTooLargeError, match="400 KB"):
        store.save(item)
    assert store.of_client(client_id) == []
