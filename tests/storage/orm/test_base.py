"""The ORM behaviour every model shares (openbrain/storage/orm/base.py), proved on each of the four models.

save / refresh / get / load / delete / get_all, NotFoundError for missing items, timestamps, version
numbers and optimistic locking (ConflictError) — all against the embedded (moto) DynamoDB.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from openbrain.aws.backend import Backend
from openbrain.core.clock import utcnow
from openbrain.core.errors import ConflictError, NotFoundError
from openbrain.storage.orm import AgentConfig, ChatSession, Client, Lead
from openbrain.storage.orm.base import OpenBrainModel

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Case:
    """How to make, address and visibly edit items of one model."""

    model: type[OpenBrainModel]
    make: Callable[[str, int], Any]  # an unsaved item number `n` of client `client_id`
    range_key: str | None  # name of the range key attribute, if the model has one
    field: str  # a text attribute a test can change

    def key(self, item: Any) -> tuple[Any, ...]:
        return (item.client_id,) + ((getattr(item, self.range_key),) if self.range_key else ())


CASES = [
    Case(AgentConfig, lambda client_id, n: AgentConfig(client_id, f"profile-{n:02d}"), "profile_name",
         "system_message"),
    Case(ChatSession, lambda client_id, n: ChatSession(client_id, profile_name=f"profile-{n:02d}"), "session_id",
         "profile_name"),
    Case(Lead, lambda client_id, n: Lead(client_id, full_name=f"Lead {n}"), "lead_id", "notes"),
    Case(Client, lambda client_id, n: Client(client_id, display_name=f"Client {n}"), None, "display_name"),
]
RANGED = [case for case in CASES if case.range_key]


def by_model(cases: list[Case]) -> Any:
    return pytest.mark.parametrize("case", cases, ids=[case.model.__name__ for case in cases])


@by_model(CASES)
def test_save_then_get_returns_the_stored_item(backend: Backend, case: Case) -> None:
    # given
    item = case.make("acme", 1)
    setattr(item, case.field, "stored value")

    # when
    item.save()
    fetched = case.model.get(*case.key(item))

    # then
    assert case.key(fetched) == case.key(item)
    assert getattr(fetched, case.field) == "stored value"
    assert fetched.version == 1


@by_model(CASES)
def test_load_is_an_alias_of_get(backend: Backend, case: Case) -> None:
    item = case.make("acme", 1)
    item.save()

    loaded = case.model.load(*case.key(item))

    assert loaded.serialize() == case.model.get(*case.key(item)).serialize()


@by_model(CASES)
def test_refresh_reloads_what_another_copy_saved(backend: Backend, case: Case) -> None:
    # given two copies of one item
    mine = case.make("acme", 1)
    mine.save()
    theirs = case.model.get(*case.key(mine))

    # when the other copy changes it and mine refreshes
    setattr(theirs, case.field, "changed elsewhere")
    theirs.save()
    mine.refresh()

    # then mine sees the change and the new version
    assert getattr(mine, case.field) == "changed elsewhere"
    assert mine.version == 2


@by_model(CASES)
def test_get_and_load_of_a_missing_item_raise_not_found(backend: Backend, case: Case) -> None:
    missing = case.make("nobody", 1)

    with pytest.raises(NotFoundError, match="not found"):
        case.model.get(*case.key(missing))
    with pytest.raises(NotFoundError, match="not found"):
        case.model.load(*case.key(missing))


@by_model(CASES)
def test_delete_removes_the_item_so_get_and_refresh_raise_not_found(backend: Backend, case: Case) -> None:
    # given
    item = case.make("acme", 1)
    item.save()

    # when
    item.delete()

    # then
    with pytest.raises(NotFoundError):
        case.model.get(*case.key(item))
    with pytest.raises(NotFoundError, match="not found"):
        item.refresh()
    assert case.model.get_all("acme") == []


@by_model(CASES)
def test_version_starts_at_1_and_increments_on_every_save(backend: Backend, case: Case) -> None:
    item = case.make("acme", 1)
    assert item.version is None

    versions: list[int | None] = []
    for n in range(3):
        setattr(item, case.field, f"edit {n}")
        item.save()
        versions.append(item.version)

    assert versions == [1, 2, 3]
    assert case.model.get(*case.key(item)).version == 3


@by_model(CASES)
def test_timestamps_are_set_on_create_and_updated_at_moves_on_every_save(backend: Backend, case: Case) -> None:
    # given
    before = utcnow()
    item = case.make("acme", 1)
    item.save()
    created_at, first_update = item.created_at, item.updated_at

    # when
    setattr(item, case.field, "edited")
    item.save()

    # then: created_at stays, updated_at moves forward, both are stored as aware UTC
    stored = case.model.get(*case.key(item))
    assert before <= created_at <= first_update < stored.updated_at <= utcnow()
    assert stored.created_at == created_at
    assert stored.updated_at == item.updated_at
    assert stored.created_at.tzinfo is not None and stored.created_at.utcoffset() == timedelta(0)


@by_model(CASES)
def test_get_all_returns_only_the_items_of_that_client(backend: Backend, case: Case) -> None:
    # given
    mine = case.make("acme", 1)
    mine.save()
    case.make("globex", 1).save()

    # when
    listed = case.model.get_all("acme")

    # then
    assert [case.key(item) for item in listed] == [case.key(mine)]
    assert case.model.get_all("initech") == []


@by_model(RANGED)
def test_get_all_follows_pagination_through_every_item(backend: Backend, case: Case) -> None:
    # given 30 items of one client and 5 of another
    mine = [case.make("acme", n) for n in range(30)]
    for item in mine:
        item.save()
    for n in range(5):
        case.make("globex", n).save()

    # when listed 7 per DynamoDB page (5 pages)
    listed = case.model.get_all("acme", page_size=7)

    # then every item of that client comes back exactly once, in range-key order, and no other client's
    assert len(listed) == 30
    assert [case.key(item) for item in listed] == sorted(case.key(item) for item in mine)
    assert {case.key(item)[0] for item in listed} == {"acme"}


@by_model(CASES)
def test_a_stale_copy_cannot_overwrite_a_newer_save(backend: Backend, case: Case) -> None:
    # given two copies of the same version
    original = case.make("acme", 1)
    original.save()
    first = case.model.get(*case.key(original))
    second = case.model.get(*case.key(original))

    # when both change it
    setattr(first, case.field, "first writer")
    first.save()
    setattr(second, case.field, "second writer")

    # then the first save wins and the second is a conflict
    with pytest.raises(ConflictError, match="changed by someone else"):
        second.save()
    stored = case.model.get(*case.key(original))
    assert getattr(stored, case.field) == "first writer"
    assert stored.version == 2


@by_model(CASES)
def test_a_stale_copy_cannot_delete_a_newer_save(backend: Backend, case: Case) -> None:
    # given
    original = case.make("acme", 1)
    original.save()
    stale = case.model.get(*case.key(original))
    setattr(original, case.field, "newer")
    original.save()

    # when / then
    with pytest.raises(ConflictError):
        stale.delete()
    assert getattr(case.model.get(*case.key(original)), case.field) == "newer"


@by_model(CASES)
def test_deleting_an_item_that_is_already_gone_is_a_conflict(backend: Backend, case: Case) -> None:
    item = case.make("acme", 1)
    item.save()
    other_copy = case.model.get(*case.key(item))
    item.delete()

    with pytest.raises(ConflictError, match="deleted"):
        other_copy.delete()


@by_model(CASES)
def test_creating_an_item_whose_key_exists_is_a_conflict(backend: Backend, case: Case) -> None:
    # given an item, and a fresh instance with the same key
    existing = case.make("acme", 1)
    setattr(existing, case.field, "first")
    existing.save()
    duplicate = case.make("acme", 1)
    if case.range_key:
        setattr(duplicate, case.range_key, getattr(existing, case.range_key))

    # when / then: the new instance (version None) does not silently replace it
    with pytest.raises(ConflictError):
        duplicate.save()
    assert getattr(case.model.get(*case.key(existing)), case.field) == "first"

