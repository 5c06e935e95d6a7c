"""The API's one security scheme, for the OpenAPI document: an API key in the `x-api-key` header."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn, SecurityScheme

SCHEME_NAME = "apiKey"
SECURITY_SCHEMES: dict[str, SecurityScheme] = {SCHEME_NAME: APIKey(name="x-api-key", in_=APIKeyIn.header)}
API_KEY: list[dict[str, list[str]]] = [{SCHEME_NAME: []}]
