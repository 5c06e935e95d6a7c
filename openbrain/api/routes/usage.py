"""`GET /usage`: the key's client's usage per UTC day, with totals (server key; services/usage.py)."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query

from openbrain.domain.usage import Day, UsageReport
from openbrain.services.usage import DEFAULT_RANGE_DAYS, MAX_RANGE_DAYS, date_range, usage_report

from ..context import current_client, stores
from .errors import KEY_ERRORS, error_responses
from .security import API_KEY

router = Router()


@router.get("/usage", summary="The client's usage per day", tags=["usage"], security=API_KEY,
            description=(
                "Turns, model tokens, errors, rate-limited requests and the mean turn latency of every key of the "
                f"client, per UTC day from `from` to `to` (both included; at most {MAX_RANGE_DAYS} days; default: "
                f"the {DEFAULT_RANGE_DAYS} days up to today), the days with any usage and the totals."),
            responses=error_responses(*KEY_ERRORS, 422))
def get_usage(from_: Annotated[Day | None, Query(alias="from", description="first day, YYYY-MM-DD")] = None,
              to: Annotated[Day | None, Query(description="last day, YYYY-MM-DD")] = None) -> UsageReport:
    client = current_client(router, server_key=True)
    start, end = date_range(from_, to)
    return usage_report(stores().counters, client.client_id, start, end)
