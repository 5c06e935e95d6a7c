"""The API's one security scheme, for the OpenAPI document: an API key in the `x-api-key` header; and the
end-user identity headers of the routes a widget key may call."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn, SecurityScheme
from aws_lambda_powertools.event_handler.openapi.params import Header

from openbrain.domain.identity import USER_ID_PATTERN

SCHEME_NAME = "apiKey"
SECURITY_SCHEMES: dict[str, SecurityScheme] = {SCHEME_NAME: APIKey(name="x-api-key", in_=APIKeyIn.header)}
API_KEY: list[dict[str, list[str]]] = [{SCHEME_NAME: []}]

# The end-user identity a widget request may carry (services/identity.py; docs/api.md, End-user identity).
UserIdHeader = Annotated[str | None, Header(
    alias="X-User-Id", pattern=USER_ID_PATTERN,
    description="The end user this request speaks for (1-256 printable ASCII characters, no space at either end). "
                "With a widget key it needs `X-User-Hash`; a server key is trusted to name any user.")]
UserHashHeader = Annotated[str | None, Header(
    alias="X-User-Hash",
    description="Lowercase hex HMAC-SHA256 of `X-User-Id` under the client's identity secret, computed by the "
                "client's server.")]
WidgetTokenHeader = Annotated[str | None, Header(
    alias="X-Widget-Token",
    description="A widget token (`POST /widget-tokens`, or a JWT the client's server signs itself): instead of "
                "`X-User-Id` + `X-User-Hash`.")]
