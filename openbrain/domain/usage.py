"""A client's usage, as `GET /usage` and `ob-admin usage` report it (docs/api.md, Usage).

Counted per UTC day for every chat turn of the client's API keys, server and widget alike (services/usage.py):

- `turns`: turns that ran the model and were stored (a reset that only returns the icebreaker runs no model);
- `input_tokens`, `output_tokens`: what the model reported for them (its `usage_metadata`);
- `errors`: turns that started and ended in an error instead (the model failed or timed out, another turn of the
  session saved first, the store failed); a request refused before its turn started (a bad body, an unknown
  session: the caller's mistake, answered with a 4xx) is not one;
- `rate_limited`: widget-key requests refused by a rate limit or quota (services/limits.py);
- `mean_latency_ms`: the mean time of the stored turns, from the request's admission to its commit (the sum is
  stored; a maximum is not: DynamoDB's ADD can only sum, and a max needs a read-modify-write per turn).
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

COUNTED = ("turns", "input_tokens", "output_tokens", "errors", "rate_limited", "latency_ms")
_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def _iso_day(value: Any) -> Any:
    """Only `YYYY-MM-DD` is a day here: pydantic's lax date also takes "0" or "1700000000" (a Unix time), which
    the OpenAPI document's `format: date` does not (the long fuzz run found `?to=0` answered 200)."""
    if isinstance(value, str) and not _ISO_DAY.fullmatch(value):
        raise ValueError("a day is YYYY-MM-DD")
    return value


Day = Annotated[date, BeforeValidator(_iso_day)]


class UsageCounts(BaseModel):
    """What a day (or a range of days) added up to."""

    model_config = ConfigDict(frozen=True)

    turns: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    errors: int = 0
    rate_limited: int = 0
    mean_latency_ms: float | None = Field(None, description="mean time of the stored turns (null: none)")

    @classmethod
    def of(cls, sums: dict[str, int]) -> UsageCounts:
        """From the stored sums (`COUNTED`)."""
        turns = sums.get("turns", 0)
        mean = round(sums.get("latency_ms", 0) / turns, 1) if turns else None
        return cls(**{name: sums.get(name, 0) for name in COUNTED if name != "latency_ms"}, mean_latency_ms=mean)


class UsageDay(UsageCounts):
    day: date


class UsageReport(BaseModel):
    """A client's usage from `from_` to `to` (UTC days, both included): the days that had any, and the totals."""

    model_config = ConfigDict(populate_by_name=True)

    client_id: str
    from_: date = Field(alias="from")
    to: date
    days: list[UsageDay]
    totals: UsageCounts
