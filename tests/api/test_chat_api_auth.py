"""openbrain.services.auth: API keys resolve to one client with one read; the origins cache for preflights."""

from __future__ import annotations

import pytest
from support.api import make_client

from openbrain.aws.backend import Backend
from openbrain.core.errors import InvalidInputError, UnauthorizedError
from openbrain.services.auth import UNAUTHORIZED_MESSAGE, KnownOrigins, authenticate
from openbrain.storage.orm import Client

pytestmark = pytest.mark.integration


def test_a_key_authenticates_its_client(backend: Backend) -> None:
    _, key = make_client("acme", [])

    assert authenticate(backend.stores.clients, key).client_id == "acme"


def test_a_key_names_its_client(backend: Backend) -> None:
    _, key = make_client("acme-2_b", [])

    prefix, client_id, secret = key.split(".")
    assert (prefix, client_id) == ("ob", "acme-2_b")
    assert len(secret) >= 43


@pytest.mark.parametrize("key", [None, "", "ob.acme", "ob.ghost." + "A" * 43, "ob.acme." + "B" * 43, "ob.acme.x.y"])
def test_every_failure_is_the_same_unauthorized_error(backend: Backend, key: str | None) -> None:
    make_client("acme", [])

    with pytest.raises(UnauthorizedError) as caught:
        authenticate(backend.stores.clients, key)

    assert caught.value.message == UNAUTHORIZED_MESSAGE


@pytest.mark.parametrize("client_id", ["a.b", "", "x" * 65, "with space", "ünï"])
def test_client_ids_that_cannot_be_in_a_key_are_refused(backend: Backend, client_id: str) -> None:
    with pytest.raises(InvalidInputError):
        Client(client_id).save()
    with pytest.raises(InvalidInputError):
        Client(client_id).add_api_key()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_known_origins_are_cached_until_the_ttl_passes(backend: Backend) -> None:
    # given
    clock = FakeClock()
    origins = KnownOrigins(ttl=60, clock=clock)
    make_client("acme", ["https://a.example"])
    assert origins.allows("https://a.example", backend)

    # when: another client adds an origin
    make_client("globex", ["https://g.example"])

    # then: seen only once the cache expires
    assert not origins.allows("https://g.example", backend)
    clock.now += 61
    assert origins.allows("https://g.example", backend)
    assert origins.allows("https://a.example", backend)


def test_known_origins_read_every_page_of_clients(backend: Backend) -> None:
    for n in range(30):
        make_client(f"client-{n}", [f"https://{n}.example"])

    origins = KnownOrigins().origins(backend)

    assert origins == {f"https://{n}.example" for n in range(30)}


def test_no_origin_is_never_allowed(backend: Backend) -> None:
    make_client("acme", [""])

    assert not KnownOrigins().allows("", backend)
    assert not KnownOrigins().allows(None, backend)
