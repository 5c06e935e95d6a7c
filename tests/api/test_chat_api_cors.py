"""CORS: preflights for origins some client allows; ACAO on responses only for the caller's own origins."""

from __future__ import annotations

import pytest
from support.api import ACME_ORIGIN, GLOBEX_ORIGIN, Api

from openbrain.storage.orm import Client

pytestmark = pytest.mark.integration

EVIL_ORIGIN = "https://evil.example"


def preflight(api: Api, origin: str | None, path: str = "/chat") -> object:
    headers = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type,x-api-key"}
    if origin is not None:
        headers["Origin"] = origin
    return api.options(path, headers=headers)


def test_a_preflight_from_an_allowed_origin_is_answered_without_a_key(acme: Api) -> None:
    response = acme.options("/chat", headers={"Origin": ACME_ORIGIN, "Access-Control-Request-Method": "POST"})

    assert response.status == 204
    assert response.header("Access-Control-Allow-Origin") == ACME_ORIGIN
    assert response.header("Access-Control-Allow-Credentials") == "true"
    assert "POST" in (response.header("Access-Control-Allow-Methods") or "")
    assert "X-Api-Key" in (response.header("Access-Control-Allow-Headers") or "")
    assert response.header("Vary") == "Origin"


def test_a_preflight_for_any_route_is_answered(acme: Api) -> None:
    response = acme.options("/agent-configs/bot", headers={"Origin": ACME_ORIGIN})

    assert response.status == 204
    assert response.header("Access-Control-Allow-Origin") == ACME_ORIGIN


@pytest.mark.parametrize("origin", [EVIL_ORIGIN, None, "https://www.acme.example.evil.example", "null"])
def test_a_preflight_from_another_origin_is_refused_without_cors_headers(acme: Api, origin: str | None) -> None:
    headers = {"Origin": origin} if origin is not None else {}

    response = acme.options("/chat", headers=headers)

    assert response.status == 403
    assert response.error["code"] == "forbidden"
    assert response.header("Access-Control-Allow-Origin") is None
    assert response.header("Access-Control-Allow-Credentials") is None


def test_a_response_carries_acao_for_the_callers_own_origin(acme: Api) -> None:
    response = acme.get("/authz", headers={"Origin": ACME_ORIGIN})

    assert response.status == 200
    assert response.header("Access-Control-Allow-Origin") == ACME_ORIGIN
    assert response.header("Access-Control-Allow-Credentials") == "true"
    assert response.header("Vary") == "Origin"


def test_an_error_response_after_authentication_carries_acao_too(acme: Api) -> None:
    response = acme.get("/sessions/01KAAAAAAAAAAAAAAAAAAAAAAA", headers={"Origin": ACME_ORIGIN})

    assert response.status == 404
    assert response.header("Access-Control-Allow-Origin") == ACME_ORIGIN


def test_the_chat_cookie_response_carries_acao_for_the_widget(acme: Api) -> None:
    response = acme.post("/chat", {"reset": True, "agentConfig": "bot"}, headers={"Origin": ACME_ORIGIN})

    assert response.header("Access-Control-Allow-Origin") == ACME_ORIGIN
    assert response.header("Set-Cookie") is not None


def test_another_clients_origin_gets_no_acao(acme: Api, globex: Api) -> None:
    # globex's origin is allowed for globex, not for a request made with acme's key
    response = acme.get("/authz", headers={"Origin": GLOBEX_ORIGIN})

    assert response.status == 200
    assert response.header("Access-Control-Allow-Origin") is None


def test_an_unknown_origin_gets_no_acao(acme: Api) -> None:
    assert acme.get("/authz", headers={"Origin": EVIL_ORIGIN}).header("Access-Control-Allow-Origin") is None


def test_an_unauthenticated_response_gets_no_acao(acme: Api) -> None:
    response = acme.get("/authz", key=None, headers={"Origin": ACME_ORIGIN})

    assert response.status == 401
    assert response.header("Access-Control-Allow-Origin") is None


def test_acao_follows_the_clients_current_origins(acme: Api) -> None:
    client = Client.get("acme")
    client.allowed_origins = []
    client.save()

    assert acme.get("/authz", headers={"Origin": ACME_ORIGIN}).header("Access-Control-Allow-Origin") is None
