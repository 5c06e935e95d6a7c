"""End-user identity (services/identity.py, domain/identity.py): user hashes and widget tokens verify only for
the user, client, profile and time they were made for; a tampered token never verifies; a rotation refuses the
old secret's hashes at once; enforcement refuses the anonymous visitor and never a server key."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import timedelta

import jwt
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from openbrain.aws.backend import Backend
from openbrain.core.clock import utcnow
from openbrain.core.errors import ConflictError, InvalidInputError, UnauthorizedError
from openbrain.domain.identity import ANONYMOUS, IDENTITY_REFUSED, EndUser, is_user_id
from openbrain.services.identity import (
    Presented,
    identify,
    mint_token,
    require_identity,
    rotate_identity_secret,
    verify_token,
)
from openbrain.storage.orm import Client
from openbrain.storage.orm.client import SERVER, WIDGET

pytestmark = pytest.mark.integration

SECRET = "obid_" + "s" * 43
NOW = utcnow().replace(microsecond=0)
user_ids = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=256)


def hex_hmac(secret: str, user_id: str) -> str:
    """The client's server's side, written from the documented contract, not from our code."""
    return hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def signing_key(secret: str) -> bytes:
    """A widget token's key, written from the documented contract (docs/api.md), not from our code."""
    return hmac.new(b"openbrain-widget-token", secret.encode(), hashlib.sha256).digest()


def claims(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {"sub": "ada", "cid": "acme", "aud": "openbrain-widget",
                               "iat": int(NOW.timestamp()), "exp": int(NOW.timestamp()) + 600}
    return {name: value for name, value in {**base, **changes}.items() if value is not None}


@pytest.fixture
def acme(backend: Backend) -> Client:
    Client("acme", display_name="Acme").save()
    rotate_identity_secret(backend, "acme")
    return backend.stores.clients.get("acme")


def secret_of(backend: Backend, client: Client) -> str:
    from openbrain.aws.secrets import resolver_for

    return resolver_for(backend).resolve(str(client.identity_secret_ref))


# ---------------------------------------------------------------------------------------------- user ids
@given(st.text(max_size=300) | st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7F), max_size=300))
@example("ada lovelace")
@example(" ada")
@example("ada ")
@example("李")
@example("x" * 256)
@example("x" * 257)
def test_a_user_id_is_1_to_256_printable_ascii_characters_without_a_space_at_either_end(text: str) -> None:
    # what travels unchanged in an X-User-Id header (H6's review: "李" worked over the WebSocket only)
    expected = (0 < len(text) <= 256 and all(0x20 <= ord(c) <= 0x7E for c in text)
                and not text.startswith(" ") and not text.endswith(" "))
    assert is_user_id(text) is expected


@settings(max_examples=50, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(user=user_ids, other=user_ids)
def test_a_users_hash_verifies_them_and_nobody_else(acme: Client, backend: Backend, user: str, other: str) -> None:
    assume(user != other)
    secret = secret_of(backend, acme)
    assert identify(acme, WIDGET, Presented(user, hex_hmac(secret, user)), backend) == EndUser(user)
    with pytest.raises(UnauthorizedError, match="could not be verified"):
        identify(acme, WIDGET, Presented(other, hex_hmac(secret, user)), backend)


# ---------------------------------------------------------------------------------------------- tokens
def test_a_minted_token_carries_the_documented_claims_and_verifies(acme: Client, backend: Backend) -> None:
    token, expires = mint_token(acme, backend, "ada", "bot", 600, now=NOW)
    decoded = jwt.decode(token, signing_key(secret_of(backend, acme)), algorithms=["HS256"],
                         audience="openbrain-widget", options={"verify_exp": False, "verify_iat": False})
    assert decoded == {"sub": "ada", "cid": "acme", "aud": "openbrain-widget", "profile": "bot",
                       "iat": int(NOW.timestamp()), "exp": int(NOW.timestamp()) + 600}
    assert expires == NOW + timedelta(seconds=600)
    assert verify_token(token, secret_of(backend, acme), "acme", now=NOW) == EndUser("ada", "bot")


@pytest.mark.parametrize(("why", "token_claims", "key"), [
    ("expired", claims(iat=int(NOW.timestamp()) - 700, exp=int(NOW.timestamp()) - 100), SECRET),
    ("not yet issued", claims(iat=int(NOW.timestamp()) + 120, exp=int(NOW.timestamp()) + 600), SECRET),
    ("lives over an hour", claims(exp=int(NOW.timestamp()) + 3601), SECRET),
    ("another client's", claims(cid="globex"), SECRET),
    ("another audience", claims(aud="someone-else"), SECRET),
    ("no audience", claims(aud=None), SECRET),
    ("no client", claims(cid=None), SECRET),
    ("no expiry", claims(exp=None), SECRET),
    ("a control character in the user id", claims(sub="ada\n"), SECRET),
    ("a profile that is no name", claims(profile="a b"), SECRET),
    ("a boolean time", claims(iat=True), SECRET),
    ("signed with another secret", claims(), "obid_" + "x" * 43),
    ("signed with the secret itself, not the key derived from it", claims(), None),
])
def test_a_token_that_does_not_check_out_is_refused_with_one_message(why: str, token_claims: dict[str, object],
                                                                      key: str | None) -> None:
    token = jwt.encode(token_claims, SECRET if key is None else signing_key(key), algorithm="HS256")
    with pytest.raises(UnauthorizedError) as refused:
        verify_token(token, SECRET, "acme", now=NOW)
    assert refused.value.message == IDENTITY_REFUSED


def test_a_token_within_the_leeway_of_its_expiry_still_verifies() -> None:
    token = jwt.encode(claims(exp=int(NOW.timestamp()) - 10, iat=int(NOW.timestamp()) - 600), signing_key(SECRET),
                       algorithm="HS256")
    assert verify_token(token, SECRET, "acme", now=NOW) == EndUser("ada")


def test_an_unsigned_token_is_refused() -> None:
    header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    payload = jwt.encode(claims(), signing_key(SECRET), algorithm="HS256").split(".")[1]
    with pytest.raises(UnauthorizedError):
        verify_token(f"{header}.{payload}.", SECRET, "acme", now=NOW)


def _decoded(token: str) -> list[bytes]:
    try:
        return [base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)) for part in token.split(".")]
    except ValueError:
        return []


@given(position=st.integers(min_value=0), replacement=st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefgh0123-_.="))
def test_a_tampered_token_never_verifies(position: int, replacement: str) -> None:
    token = jwt.encode(claims(), signing_key(SECRET), algorithm="HS256")
    position %= len(token)
    tampered = token[:position] + replacement + token[position + 1:]
    # a base64 character's unused low bits may change without changing the bytes: that is not tampering
    assume(_decoded(tampered) != _decoded(token))
    with pytest.raises(UnauthorizedError):
        verify_token(tampered, SECRET, "acme", now=NOW)


def test_a_user_hash_of_a_chosen_user_id_cannot_be_turned_into_a_token(acme: Client, backend: Backend) -> None:
    """A JWT's signing input (`<header>.<payload>`) is a valid user id: an attacker who signs up under that name
    gets its user hash from the client's server, which must not be the token's signature (another user's)."""
    # given: the hash the client's server computes for the attacker's chosen user id
    secret = secret_of(backend, acme)
    header = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=").decode()
    payload = jwt.encode(claims(sub="victim"), b"k" * 32, algorithm="HS256").split(".")[1]
    chosen = f"{header}.{payload}"
    assert is_user_id(chosen)
    signature = base64.urlsafe_b64encode(bytes.fromhex(hex_hmac(secret, chosen))).rstrip(b"=").decode()
    # when: it is presented as the signature of a token speaking for the victim
    # then: refused
    with pytest.raises(UnauthorizedError):
        identify(acme, WIDGET, Presented(token=f"{chosen}.{signature}"), backend)


def test_minting_needs_an_identity_secret_and_bounds(backend: Backend) -> None:
    Client("plain", display_name="Plain").save()
    with pytest.raises(ConflictError, match="no identity secret"):
        mint_token(backend.stores.clients.get("plain"), backend, "ada")
    rotate_identity_secret(backend, "plain")
    client = backend.stores.clients.get("plain")
    for ttl in (0, 3601):
        with pytest.raises(InvalidInputError, match="ttlSeconds"):
            mint_token(client, backend, "ada", ttl_seconds=ttl)
    with pytest.raises(InvalidInputError, match="user id"):
        mint_token(client, backend, "")


# ---------------------------------------------------------------------------------------------- identify
def test_what_a_widget_request_presents_is_verified_and_any_failure_is_one_answer(acme: Client,
                                                                                   backend: Backend) -> None:
    secret = secret_of(backend, acme)
    token, _ = mint_token(acme, backend, "ada")
    assert identify(acme, WIDGET, Presented(), backend) == ANONYMOUS
    assert identify(acme, WIDGET, Presented(token=token), backend) == EndUser("ada")
    assert identify(acme, WIDGET, Presented("ada", hex_hmac(secret, "ada").upper()), backend) == EndUser("ada")
    refused = [
        Presented("ada"),  # chatwoot/chatwoot#9493: a user id without its hash
        Presented("ada", ""),
        Presented(user_hash=hex_hmac(secret, "ada")),
        Presented("ada", hex_hmac("another secret", "ada")),
        Presented("ada", hex_hmac(secret, "ada"), token),  # both ways at once
        Presented(token="not a token"),
        Presented(token=42),  # a WebSocket frame may hold anything
        Presented(["ada"], hex_hmac(secret, "ada")),
        Presented("ada", 7),
    ]
    for presented in refused:
        with pytest.raises(UnauthorizedError) as error:
            identify(acme, WIDGET, presented, backend)
        assert error.value.message == IDENTITY_REFUSED, presented


def test_a_client_without_a_secret_refuses_any_presented_identity(backend: Backend) -> None:
    Client("plain", display_name="Plain").save()
    client = backend.stores.clients.get("plain")
    with pytest.raises(UnauthorizedError):
        identify(client, WIDGET, Presented("ada", hex_hmac("", "ada")), backend)
    assert identify(client, WIDGET, Presented(), backend) == ANONYMOUS


def test_a_server_key_is_trusted_to_name_a_user(acme: Client, backend: Backend) -> None:
    assert identify(acme, SERVER, Presented(), backend) is None
    assert identify(acme, SERVER, Presented("ada"), backend) == EndUser("ada")
    with pytest.raises(InvalidInputError):
        identify(acme, SERVER, Presented("ada\x00"), backend)
    with pytest.raises(UnauthorizedError):
        identify(acme, SERVER, Presented(token="forged"), backend)


def test_an_enforcing_client_refuses_the_anonymous_widget_visitor_but_not_its_server(acme: Client,
                                                                                    backend: Backend) -> None:
    require_identity(backend, "acme", True)
    client = backend.stores.clients.get("acme")
    with pytest.raises(UnauthorizedError, match="requires a verified end-user identity"):
        identify(client, WIDGET, Presented(), backend)
    assert identify(client, SERVER, Presented(), backend) is None


def test_requiring_identity_needs_a_secret_first(backend: Backend) -> None:
    Client("plain", display_name="Plain").save()
    with pytest.raises(ConflictError, match="--rotate"):
        require_identity(backend, "plain", True)
    assert not backend.stores.clients.get("plain").identity_required


def test_a_rotation_refuses_the_old_secrets_hashes_at_once_in_a_process_that_cached_it(acme: Client,
                                                                                       backend: Backend) -> None:
    old = secret_of(backend, acme)  # now in this process's secret cache
    assert identify(acme, WIDGET, Presented("ada", hex_hmac(old, "ada")), backend) == EndUser("ada")
    _, new = rotate_identity_secret(backend, "acme")
    client = backend.stores.clients.get("acme")  # as the next request reads it
    assert new != old and client.identity_secret_ref != acme.identity_secret_ref
    assert client.identity_secret_ref.startswith("ssm:/openbrain/dev/identity/acme/")
    with pytest.raises(UnauthorizedError):
        identify(client, WIDGET, Presented("ada", hex_hmac(old, "ada")), backend)
    assert identify(client, WIDGET, Presented("ada", hex_hmac(new, "ada")), backend) == EndUser("ada")
    ssm = backend.client("ssm")
    with pytest.raises(ssm.exceptions.ParameterNotFound):  # the old secret is gone from the store
        ssm.get_parameter(Name=str(acme.identity_secret_ref).removeprefix("ssm:"), WithDecryption=True)


def test_the_secret_is_never_in_the_clients_table(acme: Client, backend: Backend) -> None:
    secret = secret_of(backend, acme)
    items = backend.client("dynamodb").scan(TableName=Client.Meta.table_name)["Items"]
    assert items and secret not in str(items)


def test_a_rotation_that_loses_a_race_leaves_the_old_secret_in_force_and_no_new_parameter(
        acme: Client, backend: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    from dataclasses import replace

    from openbrain.core.errors import ConflictError

    class Racing:
        """The clients store, with someone else having saved the client first."""

        def __init__(self, clients: object) -> None:
            self.clients = clients

        def __getattr__(self, name: str) -> object:
            return getattr(self.clients, name)

        def save(self, client: Client) -> None:
            raise ConflictError(f"client {client.client_id} was changed by someone else; reload and try again")

    ssm = backend.client("ssm")
    before = sorted(p["Name"] for p in ssm.describe_parameters()["Parameters"])
    monkeypatch.setattr(backend, "stores", replace(backend.stores, clients=Racing(backend.stores.clients)))

    with pytest.raises(ConflictError):
        rotate_identity_secret(backend, "acme")

    assert sorted(p["Name"] for p in ssm.describe_parameters()["Parameters"]) == before
    assert backend.stores.clients.get("acme").identity_secret_ref == acme.identity_secret_ref


def test_a_chat_call_without_a_verified_user_is_refused_by_an_enforcing_client_even_if_an_adapter_forgot_to_ask(
        acme: Client, backend: Backend) -> None:
    from openbrain.conversation.chat import ChatMessage
    from openbrain.services.chat import ChatCall, chat_as_client
    from openbrain.storage.orm import AgentConfig, ChatSession

    AgentConfig("acme", "default", model="offline").save()
    require_identity(backend, "acme", True)
    client = backend.stores.clients.get("acme")
    with pytest.raises(UnauthorizedError):
        chat_as_client(client, ChatMessage(message="hi"), ChatCall(key_kind=WIDGET), backend)
    assert ChatSession.get_all("acme") == []
    # a verified user's call runs, and binds the session
    reply, _ = chat_as_client(client, ChatMessage(message="hi"), ChatCall(key_kind=WIDGET, user=EndUser("ada")),
                              backend)
    assert ChatSession.get("acme", reply.session_id).end_user_id == "ada"
