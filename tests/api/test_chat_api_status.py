"""GET /, GET /authz, unknown routes, and the OpenAPI document and Swagger UI."""

from __future__ import annotations

import pytest
from support.api import Api

from openbrain.storage.orm import Client

pytestmark = pytest.mark.integration

UNAUTHORIZED = {"code": "unauthorized", "message": "missing or invalid API key (send it in the x-api-key header)"}


def test_root_answers_ready_without_a_key(anonymous: Api) -> None:
    response = anonymous.get("/")

    assert response.status == 200
    assert response.json == {"status": "ready"}
    assert response.header("Content-Type") == "application/json"


def test_authz_names_the_keys_client(acme: Api) -> None:
    response = acme.get("/authz")

    assert response.status == 200
    assert response.json == {"status": "ready", "client_id": "acme"}


def test_authz_accepts_the_header_in_any_case(acme: Api) -> None:
    response = acme.get("/authz", key=None, headers={"X-API-Key": acme.key or ""})

    assert response.status == 200


@pytest.mark.parametrize(
    "key",
    [
        None,  # missing
        "",
        "not-a-key",
        "ob.acme",  # no secret
        "ob.acme.short",
        "ob.ac.me." + "A" * 43,  # a client id with a dot cannot exist
        "ob.nobody." + "A" * 43,  # well formed, unknown client
        "ob.acme." + "A" * 43,  # right client, wrong secret
        "x" * 10_000,
    ],
)
def test_authz_refuses_bad_keys_with_one_message(acme: Api, key: str | None) -> None:
    response = acme.get("/authz", key=key)

    assert response.status == 401
    assert response.error == UNAUTHORIZED


def test_a_key_with_another_clients_id_is_refused(acme: Api, globex: Api) -> None:
    # given: globex's secret presented as if it were acme's
    secret = (globex.key or "").rsplit(".", 1)[1]

    response = acme.get("/authz", key=f"ob.acme.{secret}")

    assert response.status == 401
    assert response.error == UNAUTHORIZED


def test_a_removed_key_stops_working(acme: Api) -> None:
    client = Client.get("acme")
    client.api_key_hashes = []
    client.save()

    assert acme.get("/authz").status == 401


def test_unknown_route_is_404_in_the_error_shape(acme: Api) -> None:
    response = acme.get("/no/such/route")

    assert response.status == 404
    assert response.error["code"] == "not_found"


def test_wrong_method_on_a_known_path_is_405_naming_the_allowed_ones(acme: Api) -> None:
    response = acme.call("PATCH", "/chat", {"message": "hi"})

    assert (response.status, response.error["code"], response.header("Allow")) == (405, "method_not_allowed",
                                                                                 "OPTIONS, POST")
    assert acme.call("PATCH", "/agent-configs/bot").header("Allow") == "DELETE, GET, HEAD, OPTIONS, PUT"
    assert acme.call("PATCH", "/no/such/path").status == 404


def test_head_is_answered_as_get_by_the_handler_itself(acme: Api) -> None:
    # given: what API Gateway hands the Lambda for `curl -I` (its ANY method includes HEAD)
    got, head = acme.get("/agent-configs/bot"), acme.call("HEAD", "/agent-configs/bot")

    # then: GET's answer (API Gateway, like ob-serve, sends a HEAD's headers without the body)
    assert head.status == got.status == 200 and head.body == got.body
    assert acme.call("HEAD", "/chat").header("Allow") == "OPTIONS, POST"


def test_openapi_json_documents_every_route_and_the_api_key(anonymous: Api) -> None:
    response = anonymous.get("/openapi.json")

    assert response.status == 200
    spec = response.json
    assert spec["openapi"].startswith("3.")
    assert spec["info"]["title"] == "OpenBrain chat API"
    paths = spec["paths"]
    assert set(paths) >= {
        "/", "/authz", "/chat", "/sessions/{session_id}", "/leads", "/leads/{lead_id}",
        "/agent-configs", "/agent-configs/{profile_name}",
    }
    assert set(paths["/agent-configs/{profile_name}"]) == {"get", "put", "delete"}
    assert "requestBody" in paths["/chat"]["post"]
    assert "requestBody" in paths["/agent-configs/{profile_name}"]["put"]
    assert spec["components"]["securitySchemes"]["apiKey"] == {"type": "apiKey", "in": "header", "name": "x-api-key"}
    assert paths["/chat"]["post"]["security"] == [{"apiKey": []}]
    assert "security" not in paths["/"]["get"]
    # what any request may get before a route runs (a URL or headers too long: ob-serve and API Gateway refuse
    # them) is documented on every operation, with the error envelope
    for path, operations in paths.items():
        for method, operation in operations.items():
            for status in ("414", "431"):
                assert operation["responses"][status]["content"]["application/json"]["schema"] == {
                    "$ref": "#/components/schemas/ErrorBody"}, (method, path, status)


def test_openapi_document_is_valid_openapi(anonymous: Api) -> None:
    from aws_lambda_powertools.event_handler.openapi.models import OpenAPI

    OpenAPI.model_validate(anonymous.get("/openapi.json").json)


def test_swagger_ui_is_served(anonymous: Api) -> None:
    response = anonymous.get("/swagger")

    assert response.status == 200
    assert response.header("Content-Type") == "text/html"
    assert "SwaggerUIBundle" in response.body
