"""The profile service (openbrain/services/profiles.py): get, list, put and delete against an expected version."""

from __future__ import annotations

import pytest

from openbrain.aws.backend import Backend
from openbrain.core.errors import ConflictError, InvalidInputError, NotFoundError
from openbrain.domain.profile import AgentProfile
from openbrain.services import profiles
from openbrain.storage.orm import AgentConfig

pytestmark = pytest.mark.integration
OFFLINE = AgentProfile(model="offline")


def test_get_gives_the_built_in_default_until_one_is_stored_and_lists_only_stored_profiles(backend: Backend) -> None:
    default = profiles.get("acme", "default")

    assert default.version is None and default.profile() == AgentProfile()
    assert profiles.list_profiles("acme") == []
    with pytest.raises(NotFoundError, match="profile 'sales' not found for client 'acme'"):
        profiles.get("acme", "sales")


def test_put_creates_then_replaces_and_says_which(backend: Backend) -> None:
    created = profiles.put("acme", "sales", OFFLINE, None)
    replaced = profiles.put("acme", "sales", AgentProfile(model="offline", temperature=0.1), 1)
    latest = profiles.put("acme", "sales", AgentProfile(model="offline", temperature=0.2))

    assert (created.created, created.config.version) == (True, 1)
    assert (replaced.created, replaced.config.version) == (False, 2)
    assert (latest.created, latest.config.version) == (False, 3)
    stored = AgentConfig.get("acme", "sales")
    assert stored.profile() == AgentProfile(model="offline", temperature=0.2)
    assert stored.created_at == created.config.created_at
    assert [c.profile_name for c in profiles.list_profiles("acme")] == ["sales"]


@pytest.mark.parametrize(
    ("expected", "message"),
    [
        (None, "profile 'sales' of client 'acme' already exists (version 2)"),
        (1, "profile 'sales' of client 'acme' is at version 2, not version 1"),
        (3, "profile 'sales' of client 'acme' is at version 2, not version 3"),
    ],
)
def test_put_against_another_version_is_a_conflict_and_writes_nothing(
    backend: Backend, expected: int | None, message: str
) -> None:
    profiles.put("acme", "sales", OFFLINE, None)
    profiles.put("acme", "sales", OFFLINE, 1)

    with pytest.raises(ConflictError, match=message.replace("(", r"\(").replace(")", r"\)")):
        profiles.put("acme", "sales", AgentProfile(model="offline", icebreaker="Mine"), expected)

    stored = AgentConfig.get("acme", "sales")
    assert (stored.version, stored.icebreaker) == (2, OFFLINE.icebreaker)


def test_put_expecting_a_version_of_a_profile_that_is_not_stored_writes_nothing(backend: Backend) -> None:
    with pytest.raises(ConflictError, match="profile 'sales' of client 'acme' is not stored, not version 1"):
        profiles.put("acme", "sales", OFFLINE, 1)

    assert AgentConfig.get_all("acme") == []


def test_a_save_that_loses_a_race_after_the_read_is_a_conflict(backend: Backend,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    profiles.put("acme", "sales", OFFLINE, None)
    read = profiles._stored

    def read_then_someone_saves(client_id: str, name: str) -> AgentConfig | None:
        current = read(client_id, name)
        AgentConfig.get(client_id, name).save()  # another writer, between our read and our write
        return current

    monkeypatch.setattr(profiles, "_stored", read_then_someone_saves)
    with pytest.raises(ConflictError, match="profile 'sales' of client 'acme' changed while saving"):
        profiles.put("acme", "sales", AgentProfile(model="offline", icebreaker="Mine"))

    assert AgentConfig.get("acme", "sales").icebreaker == OFFLINE.icebreaker


def test_a_bad_profile_name_is_refused_before_any_read(backend: Backend) -> None:
    with pytest.raises(InvalidInputError, match="profile_name must be 1-64 letters"):
        profiles.put("acme", "has space", OFFLINE)


def test_delete_against_a_stale_version_is_a_conflict_and_deletes_nothing(backend: Backend) -> None:
    profiles.put("acme", "sales", OFFLINE, None)
    profiles.put("acme", "sales", OFFLINE, 1)

    with pytest.raises(ConflictError, match="is at version 2, not version 1"):
        profiles.delete("acme", "sales", 1)
    assert AgentConfig.get("acme", "sales").version == 2

    profiles.delete("acme", "sales", 2)
    with pytest.raises(NotFoundError, match="profile 'sales' not found for client 'acme'"):
        profiles.delete("acme", "sales")
