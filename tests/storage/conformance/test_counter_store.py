"""The contract of the rate-limit counters and of a client's stored limits, on every target DynamoDB."""

from __future__ import annotations

import pytest

from openbrain.core.errors import ConflictError
from openbrain.storage.orm import Client
from openbrain.storage.stores import Count, Stores

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("transactions")]
LATER = 4_102_444_800  # 2100-01-01: kept for the test's life


def test_counts_apply_all_or_nothing_and_name_every_count_at_its_bound(stores: Stores, client_id: str) -> None:
    a, b = f"{client_id}#a", f"{client_id}#b"
    assert stores.counters.count([Count(a, {"turns": 1}, LATER, {"turns": 2}),
                                  Count(b, {"turns": 1}, LATER, {"turns": 1})]) == []

    # when: b is at its bound, so neither counter changes
    assert stores.counters.count([Count(a, {"turns": 1}, LATER, {"turns": 2}),
                                  Count(b, {"turns": 1}, LATER, {"turns": 1})]) == [1]

    # then: a is still at 1 (one more fits under 2, then it is at its bound too); tokens add without a bound
    assert stores.counters.count([Count(a, {"turns": 1, "tokens": 7}, LATER, {"turns": 2})]) == []
    assert stores.counters.count([Count(a, {"turns": 1}, LATER, {"turns": 2, "tokens": 100}),
                                  Count(b, {"turns": 1}, LATER, {"turns": 1})]) == [0, 1]
    assert stores.counters.count([Count(a, {"turns": -2}, LATER)]) == []
    assert stores.counters.count([Count(a, {"turns": 1}, LATER, {"turns": 2, "tokens": 7})]) == [0]


def test_set_limits_changes_only_the_limits_of_the_version_read(stores: Stores, client_id: str) -> None:
    stores.clients.save(Client(client_id, display_name="Acme"))
    mine, theirs = stores.clients.get(client_id), stores.clients.get(client_id)

    stores.clients.set_limits(theirs, {"turns_per_day": 5})

    stored = stores.clients.get(client_id)
    assert (stored.display_name, stored.rate_limits.turns_per_day) == ("Acme", 5)
    with pytest.raises(ConflictError):
        stores.clients.set_limits(mine, {"turns_per_day": 6})
    stores.clients.set_limits(stored, {})
    assert stores.clients.get(client_id).limits is None
