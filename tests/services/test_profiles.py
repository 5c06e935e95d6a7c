"""The profile service (openbrain/services/profiles.py): get, list, put and delete against an expected version."""

from __future__ import annotations

import pytest

from openbrain.aws.backend import Backend
from openbrain.core.errors import ConflictError, InvalidInputError, NotFoundError
from openbrain.domain.profile import AgentProfile
from openbrain.services import profiles
from openbrain.storage.orm import AgentConfig
from openbrain.storage.stores import ProfileStore

pytestmark = pytest.mark.integration
OFFLINE = AgentProfile(model="offline")


@pytest.fixture
def store(backend: Backend) -> ProfileStore:
    return backend.stores.profiles


class SomeoneSavesAfterOurRead:
    """The profile store, with another writer saving the profile between our read and our write."""

    def __init__(self, store: ProfileStore) -> None:
        self.store = store

    def get(self, client_id: str, name: str) -> AgentConfig:
        current = self.store.get(client_id, name)
        self.store.save(self.store.get(client_id, name))
        return current

    def __getattr__(self, name: str) -> object:
        return getattr(self.store, name)


def test_get_gives_the_built_in_default_until_one_is_stored_and_lists_only_stored_profiles(store: ProfileStore) -> None:
    default = profiles.get(store, "acme", "default")

    assert default.version is None and default.profile() == AgentProfile()
    assert profiles.list_profiles(store, "acme") == []
    with pytest.raises(NotFoundError, match="profile 'sales' not found for client 'acme'"):
        profiles.get(store, "acme", "sales")


def test_put_creates_then_replaces_and_says_which(store: ProfileStore) -> None:
    created = profiles.put(store, "acme", "sales", OFFLINE, None)
    replaced = profiles.put(store, "acme", "sales", AgentProfile(model="offline", temperature=0.1), 1)
    latest = profiles.put(store, "acme", "sales", AgentProfile(model="offline", temperature=0.2))

    assert (created.created, created.config.version) == (True, 1)
    assert (replaced.created, replaced.config.version) == (False, 2)
    assert (latest.created, latest.config.version) == (False, 3)
    stored = AgentConfig.get("acme", "sales")
    assert stored.profile() == AgentProfile(model="offline", temperature=0.2)
    assert stored.created_at == created.config.created_at
    assert [c.profile_name for c in profiles.list_profiles(store, "acme")] == ["sales"]


@pytest.mark.parametrize(
    ("expected", "message"),
    [
        (None, "profile 'sales' of client 'acme' already exists (version 2)"),
        (1, "profile 'sales' of client 'acme' is at version 2, not version 1"),
        (3, "profile 'sales' of client 'acme' is at version 2, not version 3"),
    ],
)
def test_put_against_another_version_is_a_conflict_and_writes_nothing(
    store: ProfileStore, expected: int | None, message: str
) -> None:
    profiles.put(store, "acme", "sales", OFFLINE, None)
    profiles.put(store, "acme", "sales", OFFLINE, 1)

    with pytest.raises(ConflictError, match=message.replace("(", r"\(").replace(")", r"\)")):
        profiles.put(store, "acme", "sales", AgentProfile(model="offline", icebreaker="Mine"), expected)

    stored = AgentConfig.get("acme", "sales")
    assert (stored.version, stored.icebreaker) == (2, OFFLINE.icebreaker)


def test_put_expecting_a_version_of_a_profile_that_is_not_stored_writes_nothing(store: ProfileStore) -> None:
    with pytest.raises(ConflictError, match="profile 'sales' of client 'acme' is not stored, not version 1"):
        profiles.put(store, "acme", "sales", OFFLINE, 1)

    assert AgentConfig.get_all("acme") == []


def test_a_save_that_loses_a_race_after_the_read_is_a_conflict(store: ProfileStore) -> None:
    profiles.put(store, "acme", "sales", OFFLINE, None)
    racing = SomeoneSavesAfterOurRead(store)

    with pytest.raises(ConflictError, match="profile 'sales' of client 'acme' changed while saving"):
        profiles.put(racing, "acme", "sales", AgentProfile(model="offline", icebreaker="Mine"))  # type: ignore[arg-type]

    assert AgentConfig.get("acme", "sales").icebreaker == OFFLINE.icebreaker


def test_a_bad_profile_name_is_refused_before_any_read(store: ProfileStore) -> None:
    with pytest.raises(InvalidInputError, match="profile_name must be 1-64 letters"):
        profiles.put(store, "acme", "has space", OFFLINE)


def test_delete_against_a_stale_version_is_a_conflict_and_deletes_nothing(store: ProfileStore) -> None:
    profiles.put(store, "acme", "sales", OFFLINE, None)
    profiles.put(store, "acme", "sales", OFFLINE, 1)

    with pytest.raises(ConflictError, match="is at version 2, not version 1"):
        profiles.delete(store, "acme", "sales", 1)
    assert AgentConfig.get("acme", "sales").version == 2

    profiles.delete(store, "acme", "sales", 2)
    with pytest.raises(NotFoundError, match="profile 'sales' not found for client 'acme'"):
        profiles.delete(store, "acme", "sales")


def test_the_default_profile_cannot_be_deleted_only_reset(backend: Backend) -> None:
    store = backend.stores.profiles
    profiles.put(store, "acme", "default", AgentProfile(temperature=0.1))

    with pytest.raises(ConflictError, match="cannot be deleted"):
        profiles.delete(store, "acme", "default")

    assert store.get("acme", "default").temperature == 0.1
