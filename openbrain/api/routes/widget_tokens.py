"""`POST /widget-tokens`: a short-lived token for one end user, minted with a server key, for the client's page to
pass to the widget (`X-Widget-Token`; services/identity.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

from openbrain.core.ids import NAME_PATTERN
from openbrain.domain.identity import MAX_TOKEN_SECONDS, USER_ID_PATTERN
from openbrain.services.identity import mint_token

from ..context import backend, current_client
from .errors import BODY_ERRORS, KEY_ERRORS, error_responses
from .security import API_KEY

router = Router()


class WidgetTokenRequest(BaseModel):
    """Whom the token speaks for, for which profile, for how long."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    user_id: str = Field(pattern=USER_ID_PATTERN, validation_alias=AliasChoices("userId", "user_id"),
                         description="the end user (1-256 printable ASCII characters, no space at either end)")
    profile: str | None = Field(None, pattern=f"^{NAME_PATTERN.pattern}$",
                                description="only sessions of this profile (default: any)")
    ttl_seconds: int = Field(MAX_TOKEN_SECONDS, ge=1, le=MAX_TOKEN_SECONDS,
                             validation_alias=AliasChoices("ttlSeconds", "ttl_seconds"),
                             description="how long the token is valid")

    @field_validator("ttl_seconds", mode="before")
    @classmethod
    def _json_integer(cls, value: Any) -> Any:
        """A JSON Schema integer (3600 or 3600.0), never `true` or "60" (as `RateLimits`)."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError("must be a whole number")
        return value


class WidgetToken(BaseModel):
    token: str
    expiresAt: datetime


@router.post("/widget-tokens", summary="Mint a widget token for an end user", tags=["identity"], security=API_KEY,
             description="Server key only; the client needs an identity secret (`ob-admin client identity CLIENT "
                         "--rotate`), else 409. The token is a JWT (HS256) signed with a key derived from that "
                         "secret: the client's server may also mint its own (docs/api.md, End-user identity).",
             responses=error_responses(*BODY_ERRORS, *KEY_ERRORS, 409))
def post_widget_token(body: Annotated[WidgetTokenRequest, Body()]) -> WidgetToken:
    client = current_client(router, server_key=True)
    token, expires = mint_token(client, backend(), body.user_id, body.profile, body.ttl_seconds)
    return WidgetToken(token=token, expiresAt=expires)
