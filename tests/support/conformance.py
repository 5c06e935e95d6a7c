"""The conformance suite's helpers (tests/storage/conformance): each client-item store's items, a model bound to a
missing table, and counting DynamoDB requests."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from openbrain.aws.backend import Backend
from openbrain.storage.orm import AgentConfig, ChatSession, Lead
from openbrain.storage.orm.base import OpenBrainModel
from openbrain.storage.stores import Stores

MB = 1_000_000
MISSING_TABLE = "openbrain-conformance-missing"


@dataclass(frozen=True)
class Target:
    """One DynamoDB under test, and what it can do."""

    name: str
    backend: Backend
    ttl: bool = True  # it implements DescribeTimeToLive / UpdateTimeToLive (dynalite does not)
    transactions: bool = True  # it implements TransactWriteItems (dynalite does not)

    @property
    def stores(self) -> Stores:
        return self.backend.stores


@dataclass(frozen=True)
class Kind:
    name: str
    store: Callable[[Stores], Any]
    make: Callable[[str, int], Any]  # an unsaved item number `n` of a client
    key: Callable[[Any], str]  # its range key
    field: str  # a text attribute a test may change
    big: Callable[[str, int], Any]  # an unsaved item of `big_bytes`, about
    big_bytes: int
    can_exceed_400_kb: bool = True  # an item of this kind can reach DynamoDB's limit (validation allowing)


KINDS = [
    Kind("profiles", lambda s: s.profiles, lambda c, n: AgentConfig(c, f"profile-{n:03d}", model="offline"),
         lambda i: i.profile_name, "icebreaker",
         lambda c, n: AgentConfig(c, f"profile-{n:03d}", model="offline", system_message="s" * 20_000,
                                  icebreaker="i" * 20_000),
         40_000, can_exceed_400_kb=False),  # validation caps a profile's texts at 2 x 20,000 characters
    Kind("sessions", lambda s: s.sessions, lambda c, n: ChatSession(c, profile_name=f"profile-{n:03d}"),
         lambda i: i.session_id, "profile_name",
         lambda c, n: ChatSession(c, profile_name="big", memory=os.urandom(100_000)), 100_000),
    Kind("leads", lambda s: s.leads, lambda c, n: Lead(c, full_name=f"Lead {n}"), lambda i: i.lead_id, "notes",
         lambda c, n: Lead(c, full_name=f"Lead {n}", notes="n" * 100_000), 100_000),
]


def by_kind(kinds: list[Kind] = KINDS) -> Any:
    return pytest.mark.parametrize("kind", kinds, ids=[kind.name for kind in kinds])


def twin(item: OpenBrainModel) -> Any:
    """An unsaved copy of `item` with its key and fields (a new item where one exists)."""
    data = item.serialize()
    data.pop("version", None)
    return type(item).from_raw_data(data)


def on_missing_table(model: type[OpenBrainModel]) -> Any:
    """A subclass of `model` bound to a table that does not exist (same region and endpoint)."""
    meta = type("Meta", (model.Meta,), {"table_name": MISSING_TABLE})
    return type(f"Missing{model.__name__}", (model,), {"Meta": meta, "__module__": __name__})


@contextmanager
def counting(operation: str = "") -> Iterator[list[str]]:
    """The DynamoDB `operation` requests (Query, Scan; every operation if none is named) made meanwhile through
    the models' connection, by operation name, in order."""
    calls: list[str] = []
    client = AgentConfig._get_connection().connection.client  # the models share it (bind_models)

    def count(event_name: str, **_: Any) -> None:
        calls.append(event_name.rsplit(".", 1)[-1])

    event = f"after-call.dynamodb.{operation}" if operation else "after-call.dynamodb"
    client.meta.events.register(event, count)
    try:
        yield calls
    finally:
        client.meta.events.unregister(event, count)
