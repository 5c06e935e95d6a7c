"""`GET /limits` and `PUT /limits`: the key's client's rate limits and quotas (server key; domain/limits.py)."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body

from openbrain.domain.limits import RateLimits
from openbrain.services.clients import set_limits

from ..context import current_client, stores
from .errors import BODY_ERRORS, KEY_ERRORS, error_responses
from .security import API_KEY

router = Router()


@router.get("/limits", summary="The client's rate limits and quotas", tags=["limits"], security=API_KEY,
            description="What the client's widget-key turns are limited to (docs/api.md, Rate limits and quotas).",
            responses=error_responses(*KEY_ERRORS))
def get_limits() -> RateLimits:
    return current_client(router, server_key=True).rate_limits


@router.put("/limits", summary="Set the client's rate limits and quotas", tags=["limits"], security=API_KEY,
            description="Replaces every limit: one left out goes back to its default. 0 refuses every turn.",
            responses=error_responses(*BODY_ERRORS, *KEY_ERRORS, 409))
def put_limits(body: Annotated[RateLimits, Body()]) -> RateLimits:
    client = current_client(router, server_key=True)
    return set_limits(stores(), client, body.model_dump(), reset=True)
