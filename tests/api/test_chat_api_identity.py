"""End-user identity over the HTTPS API (docs/api.md, End-user identity): `X-User-Id` + `X-User-Hash` or
`X-Widget-Token` on `POST /chat` and `GET /sessions/{id}`; `POST /widget-tokens`; `GET /sessions?userId=`.
Anything that does not verify is 401 and runs and stores nothing; a verified user's sessions are theirs alone
and follow them to another device; a client that requires identity refuses every unverified widget request."""

from __future__ import annotations

import hashlib
import hmac
import textwrap
from datetime import datetime, timedelta

import jwt
import pytest
from support.api import ACME_ORIGIN, Api

from openbrain.aws.backend import Backend
from openbrain.core.clock import utcnow
from openbrain.domain.identity import IDENTITY_REFUSED
from openbrain.services.identity import mint_token, require_identity, rotate_identity_secret
from openbrain.storage.orm import ChatSession, RateCounter

pytestmark = pytest.mark.integration


@pytest.fixture
def secret(acme: Api, backend: Backend) -> str:
    """acme's identity secret, as `ob-admin client identity acme --rotate` prints it."""
    return rotate_identity_secret(backend, "acme")[1]


def signed(secret: str, user_id: str) -> dict[str, str]:
    """What the client's page sends for a user its server signed in (the hash made as the docs tell a client)."""
    digest = hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()
    return {"X-User-Id": user_id, "X-User-Hash": digest}


def token_key(secret: str) -> bytes:
    """What a widget token is signed with, derived from the secret as the docs tell a client's server."""
    return hmac.new(b"openbrain-widget-token", secret.encode(), hashlib.sha256).digest()


def token_header(acme: Api, user_id: str, **body: object) -> dict[str, str]:
    response = acme.post("/widget-tokens", {"userId": user_id, **body})
    assert response.status == 200, response.body
    return {"X-Widget-Token": response.json["token"]}


def start(api: Api, headers: dict[str, str] | None = None, profile: str = "bot") -> str:
    response = api.post("/chat", {"agentConfig": profile, "message": "hello"}, headers=headers)
    assert response.status == 200, response.body
    return str(response.json["session_id"])


def turns(session_id: str) -> int:
    return int(ChatSession.get("acme", session_id).turn_count)


# ---------------------------------------------------------------------------------------------- refusals
REFUSED = {
    "a user id without a hash (chatwoot/chatwoot#9493)": lambda s, acme: {"X-User-Id": "ada"},
    "a user id with an empty hash": lambda s, acme: {"X-User-Id": "ada", "X-User-Hash": ""},
    "a wrong hash": lambda s, acme: {**signed(s, "ada"), "X-User-Hash": "0" * 64},
    "another user's hash": lambda s, acme: {**signed(s, "bob"), "X-User-Id": "ada"},
    "a hash without a user id": lambda s, acme: {"X-User-Hash": signed(s, "ada")["X-User-Hash"]},
    "a hash under another secret": lambda s, acme: signed("obid_another", "ada"),
    "a garbage token": lambda s, acme: {"X-Widget-Token": "e30.e30.e30"},
    "an empty token": lambda s, acme: {"X-Widget-Token": ""},
    "a token and a hash": lambda s, acme: {**token_header(acme, "ada"), **signed(s, "ada")},
    "an expired token": lambda s, acme: {"X-Widget-Token": jwt.encode(
        {"sub": "ada", "cid": "acme", "aud": "openbrain-widget", "iat": _ago(7200), "exp": _ago(3600)}, token_key(s))},
    "another client's token": lambda s, acme: {"X-Widget-Token": jwt.encode(
        {"sub": "ada", "cid": "globex", "aud": "openbrain-widget", "iat": _ago(0), "exp": _ago(-60)}, token_key(s))},
}


def _ago(seconds: int) -> int:
    return int((utcnow() - timedelta(seconds=seconds)).timestamp())


@pytest.mark.parametrize("why", REFUSED)
def test_an_identity_that_does_not_verify_is_401_and_nothing_runs_or_is_stored(acme: Api, widget: Api, secret: str,
                                                                               why: str) -> None:
    headers = REFUSED[why](secret, acme)
    for path, method in (("/chat", "POST"), (f"/sessions/{start(widget)}", "GET")):
        counted = len(list(RateCounter.scan()))
        sessions = len(ChatSession.get_all("acme"))
        body = {"agentConfig": "bot", "message": "hello"} if method == "POST" else None
        response = widget.call(method, path, body, headers={**headers, "Origin": ACME_ORIGIN})
        assert response.status == 401, (why, path)
        assert response.error == {"code": "unauthorized", "message": IDENTITY_REFUSED}  # never says which part
        assert response.header("Access-Control-Allow-Origin") == ACME_ORIGIN  # the widget can read why
        assert len(ChatSession.get_all("acme")) == sessions
        assert len(list(RateCounter.scan())) == counted  # not even a rate-limit counter moved


def test_a_token_of_another_clients_secret_is_refused(acme: Api, globex: Api, widget: Api, secret: str,
                                                      backend: Backend) -> None:
    rotate_identity_secret(backend, "globex")
    theirs = token_header(globex, "ada")
    assert widget.post("/chat", {"agentConfig": "bot", "message": "hi"}, headers=theirs).status == 401


# ---------------------------------------------------------------------------------------------- binding
def test_a_verified_users_session_is_theirs_alone(acme: Api, widget: Api, secret: str) -> None:
    # given: ada starts a session through the widget
    session_id = start(widget, signed(secret, "ada"))
    assert ChatSession.get("acme", session_id).end_user_id == "ada"

    # then: bob, the anonymous visitor and a token for bob find nothing there, as if it did not exist
    for headers in (signed(secret, "bob"), {}, token_header(acme, "bob")):
        refused = widget.post("/chat", {"sessionId": session_id, "message": "show me"}, headers=headers)
        assert (refused.status, refused.error["code"]) == (404, "not_found")
        assert widget.get(f"/sessions/{session_id}", headers=headers).status == 404
    missing = widget.post("/chat", {"sessionId": "01JNOSUCHSESSION0000000000", "message": "x"},
                          headers=signed(secret, "bob"))
    assert refused.error["message"].replace(session_id, "ID") == missing.error["message"].replace(
        "01JNOSUCHSESSION0000000000", "ID")
    assert turns(session_id) == 1

    # and: ada continues and reads it; the server key, trusted, reads any session
    assert widget.post("/chat", {"sessionId": session_id, "message": "again"}, headers=signed(secret, "ada")).status \
        == 200
    assert widget.get(f"/sessions/{session_id}", headers=signed(secret, "ada")).json["turn_count"] == 2
    assert acme.get(f"/sessions/{session_id}").status == 200


def test_a_session_without_a_user_is_the_first_verified_user_who_continues_it(widget: Api, secret: str) -> None:
    # given: an anonymous visitor's session, open to the widget key
    session_id = start(widget)
    assert ChatSession.get("acme", session_id).end_user_id is None
    turns_before = widget.get(f"/sessions/{session_id}").json["turn_count"]

    # when: the visitor signs in as ada and goes on
    assert widget.post("/chat", {"sessionId": session_id, "message": "hi"}, headers=signed(secret, "ada")).status \
        == 200

    # then: it is ada's: the next person signed in on that browser (bob), or nobody, finds nothing there
    assert ChatSession.get("acme", session_id).end_user_id == "ada"
    assert widget.get(f"/sessions/{session_id}", headers=signed(secret, "ada")).json["turn_count"] == turns_before + 1
    assert widget.get(f"/sessions/{session_id}", headers=signed(secret, "bob")).status == 404
    assert widget.get(f"/sessions/{session_id}").status == 404


def test_a_server_key_may_act_as_a_user_without_a_hash(acme: Api, widget: Api, secret: str) -> None:
    session_id = start(acme, {"X-User-Id": "ada"})
    assert ChatSession.get("acme", session_id).end_user_id == "ada"
    assert widget.post("/chat", {"sessionId": session_id, "message": "hi"}, headers=signed(secret, "ada")).status \
        == 200
    assert acme.post("/chat", {"sessionId": session_id, "message": "hi"}, headers={"X-User-Id": "bob"}).status \
        == 404


def test_a_user_resumes_on_another_device_and_lists_their_sessions(acme: Api, widget: Api, secret: str) -> None:
    # given: ada starts on device A with her hash, and later a second conversation; bob and a visitor one each
    first = start(widget, signed(secret, "ada"))
    start(widget, signed(secret, "bob"))
    start(widget)
    second = start(widget, signed(secret, "ada"))

    # when: on device B, with a widget token her client's server minted, she continues the first
    device_b = token_header(acme, "ada")
    continued = widget.post("/chat", {"sessionId": first, "message": "I am back"}, headers=device_b)

    # then
    assert continued.status == 200
    transcript = widget.get(f"/sessions/{first}", headers=device_b).json["messages"]
    assert [m["content"] for m in transcript if m["role"] == "user"] == ["hello", "I am back"]
    listed = acme.get("/sessions", query={"userId": "ada"})
    assert listed.status == 200
    assert listed.json["user_id"] == "ada"
    assert [(s["session_id"], s["turn_count"]) for s in listed.json["sessions"]] == [(first, 2), (second, 1)]
    assert set(listed.json["sessions"][0]) == {"session_id", "profile_name", "turn_count", "created_at",
                                              "updated_at", "ended"}
    assert [s["session_id"] for s in acme.get("/sessions", query={"userId": "ada", "limit": "1"}).json["sessions"]] \
        == [first]
    assert acme.get("/sessions", query={"userId": "nobody"}).json["sessions"] == []


def test_listing_a_users_sessions_needs_a_server_key_and_a_user_id(acme: Api, widget: Api) -> None:
    assert widget.get("/sessions", query={"userId": "ada"}).status == 403
    assert acme.get("/sessions").status == 422
    assert acme.get("/sessions", query={"userId": "a\x01"}).status == 422
    assert acme.get("/sessions", query={"userId": "ada", "limit": "0"}).status == 422


def test_a_token_scoped_to_a_profile_cannot_start_or_continue_another(acme: Api, widget: Api, secret: str,
                                                                      backend: Backend) -> None:
    from openbrain.storage.orm import AgentConfig

    AgentConfig("acme", "sales", model="offline").save()
    scoped = token_header(acme, "ada", profile="bot")
    on_bot = start(widget, scoped)
    sales = start(widget, signed(secret, "ada"), profile="sales")

    refused = widget.post("/chat", {"agentConfig": "sales", "message": "hi"}, headers=scoped)
    assert (refused.status, refused.error["code"]) == (401, "unauthorized")
    assert widget.post("/chat", {"sessionId": sales, "message": "hi"}, headers=scoped).status == 404
    assert widget.get(f"/sessions/{sales}", headers=scoped).status == 404
    assert widget.post("/chat", {"sessionId": on_bot, "message": "hi"}, headers=scoped).status == 200


# ---------------------------------------------------------------------------------------------- enforcement
def test_a_client_requiring_identity_refuses_every_unverified_widget_request(acme: Api, widget: Api, secret: str,
                                                                             backend: Backend) -> None:
    # given: a session from before enforcement, then enforcement on
    earlier = start(widget)
    require_identity(backend, "acme", True)

    # then: chatwoot/chatwoot#9493's case and the rest are refused on every route a widget key may use
    for headers in ({}, {"X-User-Id": "ada"}, {"X-User-Id": "ada", "X-User-Hash": ""}):
        assert widget.post("/chat", {"agentConfig": "bot", "message": "hi"}, headers=headers).status == 401
        assert widget.post("/chat", {"sessionId": earlier, "message": "hi"}, headers=headers).status == 401
        assert widget.get(f"/sessions/{earlier}", headers=headers).status == 401
    assert turns(earlier) == 1
    # and: a verified user and the server key are served
    assert start(widget, signed(secret, "ada"))
    assert start(widget, token_header(acme, "ada"))
    assert start(acme)


# ---------------------------------------------------------------------------------------------- tokens
def test_post_widget_tokens_mints_a_token_for_at_most_an_hour(acme: Api, secret: str) -> None:
    before = utcnow().replace(microsecond=0)
    response = acme.post("/widget-tokens", {"userId": "ada", "profile": "bot", "ttlSeconds": 600})
    assert response.status == 200
    claims = jwt.decode(response.json["token"], token_key(secret), algorithms=["HS256"], audience="openbrain-widget")
    assert (claims["sub"], claims["cid"], claims["profile"], claims["exp"] - claims["iat"]) == ("ada", "acme", "bot",
                                                                                              600)
    expires = datetime.fromisoformat(response.json["expiresAt"])
    assert before + timedelta(seconds=600) <= expires <= utcnow() + timedelta(seconds=600)
    default = acme.post("/widget-tokens", {"user_id": "ada"}).json["token"]
    lifetime = jwt.decode(default, token_key(secret), algorithms=["HS256"], audience="openbrain-widget")["exp"] \
        - claims["iat"]
    assert lifetime in range(3600, 3700)


@pytest.mark.parametrize("body", [{}, {"userId": ""}, {"userId": "a\nb"}, {"userId": "x" * 257},
                                  {"userId": "ada", "ttlSeconds": 3601}, {"userId": "ada", "ttlSeconds": 0},
                                  {"userId": "ada", "ttlSeconds": True}, {"userId": "ada", "profile": "a b"},
                                  {"userId": "ada", "admin": True}])
def test_post_widget_tokens_refuses_a_bad_body(acme: Api, secret: str, body: dict[str, object]) -> None:
    response = acme.post("/widget-tokens", body)
    assert (response.status, response.error["code"]) == (422, "invalid_input")


def test_post_widget_tokens_needs_a_server_key_and_an_identity_secret(acme: Api, widget: Api) -> None:
    no_secret = acme.post("/widget-tokens", {"userId": "ada"})
    assert (no_secret.status, no_secret.error["code"]) == (409, "conflict")
    assert "ob-admin client identity acme --rotate" in no_secret.error["message"]
    assert widget.post("/widget-tokens", {"userId": "ada"}).status == 403


def test_a_token_the_clients_own_server_signs_is_accepted(acme: Api, widget: Api, secret: str) -> None:
    now = int(utcnow().timestamp())
    claims = {"sub": "ada", "cid": "acme", "aud": "openbrain-widget", "iat": now, "exp": now + 300}
    session_id = start(widget, {"X-Widget-Token": jwt.encode(claims, token_key(secret))})
    assert ChatSession.get("acme", session_id).end_user_id == "ada"
    # signed with the secret itself, it is refused: that key would also make every user hash (services/identity.py)
    assert widget.post("/chat", {"message": "hi"}, headers={"X-Widget-Token": jwt.encode(claims, secret)}).status \
        == 401


# ---------------------------------------------------------------------------------------------- limits, CORS
def test_the_rate_limits_count_a_verified_user_not_the_address_they_share(acme: Api, widget: Api, secret: str,
                                                                          backend: Backend) -> None:
    acme.put("/limits", {"user_burst": 1})
    # every request comes from the same IP (support/api.py); each verified user gets their own burst
    assert widget.post("/chat", {"reset": True, "agentConfig": "bot"}, headers=signed(secret, "ada")).status == 200
    assert widget.post("/chat", {"reset": True, "agentConfig": "bot"}, headers=signed(secret, "bob")).status == 200
    assert widget.post("/chat", {"reset": True, "agentConfig": "bot"}).status == 200  # the IP's own
    again = widget.post("/chat", {"reset": True, "agentConfig": "bot"}, headers=token_header(acme, "ada"))
    assert (again.status, again.error["code"]) == (429, "rate_limited")
    keys = " ".join(str(counter.attribute_values) for counter in RateCounter.scan())
    assert "ada" not in keys and "bob" not in keys  # a digest, no user ids in the counters table


def test_a_preflight_allows_the_identity_headers(acme: Api) -> None:
    response = acme.options("/chat", headers={"Origin": ACME_ORIGIN, "Access-Control-Request-Method": "POST",
                                              "Access-Control-Request-Headers": "x-user-id,x-user-hash"})
    allowed = {name.strip().lower() for name in (response.header("Access-Control-Allow-Headers") or "").split(",")}
    assert {"x-api-key", "x-user-id", "x-user-hash", "x-widget-token"} <= allowed


def test_minting_for_a_past_moment_makes_a_token_the_api_refuses(acme: Api, widget: Api, secret: str,
                                                                 backend: Backend) -> None:
    client = backend.stores.clients.get("acme")
    token, _ = mint_token(client, backend, "ada", ttl_seconds=60, now=utcnow() - timedelta(minutes=5))
    assert widget.post("/chat", {"agentConfig": "bot", "message": "hi"}, headers={"X-Widget-Token": token}).status \
        == 401


def test_the_python_snippets_in_docs_api_md_make_a_hash_and_a_token_the_api_accepts(widget: Api,
                                                                                      secret: str) -> None:
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text()
    section = text.split("## End-user identity", 1)[1].split("\n## ", 1)[0]
    snippets = [block.split("```", 1)[0] for block in section.split("```python\n")[1:]]
    assert len(snippets) == 2
    scope: dict[str, object] = {"identity_secret": secret, "user_id": "ada"}
    for snippet in snippets:
        exec(textwrap.dedent(snippet), scope)  # the documentation's own examples, from this repository

    by_hash = start(widget, {"X-User-Id": "ada", "X-User-Hash": str(scope["user_hash"])})
    assert ChatSession.get("acme", by_hash).end_user_id == "ada"
    assert widget.post("/chat", {"sessionId": by_hash, "message": "hi"},
                       headers={"X-Widget-Token": str(scope["token"])}).status == 200


def test_an_idempotency_key_replays_only_to_the_user_who_sent_it(widget: Api, secret: str) -> None:
    body = {"agentConfig": "bot", "message": "hello"}
    key = {"Idempotency-Key": "8d5f3a52-3c1e-4d8b-9a57-0c1f2e3d4b5a"}
    first = widget.post("/chat", body, headers={**key, **signed(secret, "ada")})
    replayed = widget.post("/chat", body, headers={**key, **signed(secret, "ada")})
    assert replayed.header("Idempotent-Replayed") == "true" and replayed.json == first.json

    other = widget.post("/chat", body, headers={**key, **signed(secret, "bob")})
    assert (other.status, other.error["code"]) == (422, "idempotency_key_reused")
    assert first.json["session_id"] not in other.body
