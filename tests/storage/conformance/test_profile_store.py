"""The profile store's own contract beside the item stores': the built-in default, and saving together."""

from __future__ import annotations

import pytest

from openbrain.core.errors import ConflictError, NotFoundError
from openbrain.domain.profile import DEFAULT_PROFILE, AgentProfile
from openbrain.storage.dynamodb import DynamoDBProfileStore
from openbrain.storage.orm import AgentConfig
from openbrain.storage.stores import Stores

pytestmark = pytest.mark.integration


def test_the_default_profile_reads_as_the_built_in_one_until_one_is_stored(stores: Stores, client_id: str) -> None:
    built_in = stores.profiles.get_or_default(client_id, DEFAULT_PROFILE)
    assert built_in.version is None and built_in.profile() == AgentProfile()
    with pytest.raises(NotFoundError):
        stores.profiles.get_or_default(client_id, "sales")

    stored = AgentConfig(client_id, DEFAULT_PROFILE, model="offline")
    stores.profiles.save(stored)
    assert stores.profiles.get_or_default(client_id, DEFAULT_PROFILE).model == "offline"


@pytest.mark.usefixtures("transactions")
def test_save_all_writes_new_and_changed_profiles_together(stores: Stores, client_id: str) -> None:
    # given one stored profile, changed, and two new ones
    stores.profiles.save(AgentConfig(client_id, "a", model="offline"))
    changed = stores.profiles.get(client_id, "a")
    changed.icebreaker = "changed"
    items = [changed, AgentConfig(client_id, "b", model="offline"), AgentConfig(client_id, "c", model="offline")]

    # when
    stores.profiles.save_all(client_id, items)

    # then
    stored = {config.profile_name: config for config in stores.profiles.of_client(client_id)}
    assert sorted(stored) == ["a", "b", "c"]
    assert (stored["a"].icebreaker, stored["a"].version) == ("changed", 2)
    assert stored["b"].version == stored["c"].version == 1


@pytest.mark.usefixtures("transactions")
def test_save_all_with_one_stale_profile_writes_none_and_names_it(stores: Stores, client_id: str) -> None:
    # given a profile read, then saved by someone else
    stores.profiles.save(AgentConfig(client_id, "a", model="offline"))
    mine, theirs = stores.profiles.get(client_id, "a"), stores.profiles.get(client_id, "a")
    theirs.icebreaker = "theirs"
    stores.profiles.save(theirs)
    mine.icebreaker = "mine"

    # when / then: the whole write is refused
    refused = r"profile\(s\) a of client .* changed while importing; nothing was written"
    with pytest.raises(ConflictError, match=refused):
        stores.profiles.save_all(client_id, [AgentConfig(client_id, "b", model="offline"), mine])
    assert [c.profile_name for c in stores.profiles.of_client(client_id)] == ["a"]
    assert stores.profiles.get(client_id, "a").icebreaker == "theirs"


@pytest.mark.usefixtures("transactions")
def test_save_all_splits_what_one_transaction_cannot_hold(stores: Stores, client_id: str) -> None:
    store = DynamoDBProfileStore(AgentConfig, transaction_items=2)  # the models the target's backend bound

    store.save_all(client_id, [AgentConfig(client_id, f"p{i}", model="offline") for i in range(5)])

    assert [c.profile_name for c in stores.profiles.of_client(client_id)] == [f"p{i}" for i in range(5)]
