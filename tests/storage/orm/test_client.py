"""Client (openbrain/storage/orm/client.py): API keys are shown once and stored only as SHA-256 hashes."""

from __future__ import annotations

import hashlib
import json

import pytest

from openbrain.aws.backend import Backend
from openbrain.core.errors import InvalidInputError
from openbrain.storage.orm import Client
from openbrain.storage.orm.client import API_KEY_PREFIX, client_id_of_api_key

pytestmark = pytest.mark.integration


def raw_item(backend: Backend, client_id: str) -> dict:
    response = backend.client("dynamodb").get_item(
        TableName=Client.Meta.table_name, Key={"client_id": {"S": client_id}}, ConsistentRead=True
    )
    return response["Item"]


def test_add_api_key_returns_a_new_random_key_each_time() -> None:
    client = Client("acme")

    keys = [client.add_api_key() for _ in range(3)]

    assert len(set(keys)) == 3
    assert all(key.startswith(API_KEY_PREFIX) and len(key) > 40 for key in keys)


def test_only_the_sha256_of_an_api_key_is_stored(backend: Backend) -> None:
    # given
    client = Client("acme", display_name="Acme")
    api_key = client.add_api_key()

    # when
    client.save()

    # then: the raw item holds the hash and the plaintext key appears nowhere in it
    item = raw_item(backend, "acme")
    assert item["api_key_hashes"] == {"L": [{"S": "server:" + hashlib.sha256(api_key.encode()).hexdigest()}]}
    serialized = json.dumps(item)
    assert api_key not in serialized
    assert api_key.removeprefix(API_KEY_PREFIX) not in serialized


def test_has_api_key_accepts_a_stored_key_after_reading_the_client_back(backend: Backend) -> None:
    client = Client("acme")
    first, second = client.add_api_key(), client.add_api_key()
    client.save()

    stored = Client.get("acme")

    assert stored.has_api_key(first)
    assert stored.has_api_key(second)


def test_a_key_names_its_client_and_no_other() -> None:
    api_key = Client("acme-1_x").add_api_key()

    assert api_key.startswith("ob.acme-1_x.")
    assert client_id_of_api_key(api_key) == "acme-1_x"


@pytest.mark.parametrize(
    "candidate",
    ["", "ob_acme_x", "ob.acme", "ob.acme.", "ob.ac.me." + "A" * 43, "xx.acme." + "A" * 43,
     "ob.acme." + "A" * 43 + ".more", None, 42],
)
def test_malformed_keys_name_no_client(candidate: object) -> None:
    assert client_id_of_api_key(candidate) is None


@pytest.mark.parametrize("client_id", ["a.b", "", "x" * 65, "with space", "ünïcode"])
def test_client_ids_that_cannot_appear_in_a_key_are_refused(client_id: str) -> None:
    with pytest.raises(InvalidInputError):
        Client(client_id).add_api_key()


def test_saving_a_client_with_an_invalid_id_is_refused(backend: Backend) -> None:
    with pytest.raises(InvalidInputError):
        Client("a.b").save()


@pytest.mark.parametrize("candidate", ["", "ob_not-a-key", "wrong"])
def test_has_api_key_refuses_other_keys(candidate: str) -> None:
    client = Client("acme")
    client.add_api_key()

    assert not client.has_api_key(candidate)


def test_the_stored_hash_is_not_itself_a_key() -> None:
    client = Client("acme")
    client.add_api_key()

    assert not client.has_api_key(str(client.api_key_hashes[0]))


def test_a_client_without_keys_accepts_none() -> None:
    assert not Client("acme").has_api_key("ob_anything")


def test_a_widget_key_is_a_different_kind_that_cannot_pose_as_a_server_key(backend: Backend) -> None:
    from openbrain.storage.orm.client import SERVER, WIDGET, parse_api_key

    client = Client("acme")
    widget = client.add_api_key(WIDGET)
    client.save()
    stored = Client.get("acme")

    assert widget.startswith("obw.acme.") and parse_api_key(widget) == (WIDGET, "acme")
    assert stored.has_api_key(widget)
    assert not stored.has_api_key("ob." + widget.removeprefix("obw."))  # same secret, claimed as a server key
    assert (stored.api_key_count(SERVER), stored.api_key_count(WIDGET)) == (0, 1)
    stored.revoke_api_keys(WIDGET)
    assert not stored.has_api_key(widget)
