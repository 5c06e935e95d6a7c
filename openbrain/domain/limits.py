"""A client's rate limits and quotas: what a public (widget) key may spend (docs/api.md, Rate limits and quotas).

One schema for the Client item (only the limits set differ from the defaults), `GET/PUT /limits` and
`ob-admin client limits`. Every limit but the scheduled messages' counts turns (a request to `POST /chat` or a
stream, a reset included) or the model's tokens; 0 refuses every turn (a kill switch).

The defaults protect a new client before anyone has thought about it: a person types a few messages a
minute, so 20 a minute (and 5 in any 10 seconds) per end user never stops a real visitor but stops a script;
60 a minute per client leaves room for a few visitors at once; one turn at a time per session, because a
second concurrent turn of one session can never be saved (optimistic locking) but would still be paid for;
2,000 turns and 200,000 tokens a day, 30,000 turns and 1,000,000 tokens a month bound what a leaked key can
cost (1 M tokens of gpt-4o-mini is well under a dollar) until the client raises them.

Scheduled messages (docs/scheduling.md) have limits of their own: 10 waiting per session, 1,000 per client, and
a recurring one at most every 15 minutes; a scheduled prompt to the chatbot is a turn of the client's, counted against
its daily and monthly quotas (services/schedules.py).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

BURST_SECONDS = 10  # the window of `user_burst`
MAX_LIMIT = 1_000_000_000


def _limit(default: int, description: str) -> Any:
    return Field(default, ge=0, le=MAX_LIMIT, description=description)


class RateLimits(BaseModel):
    """Per client: turns per minute with a burst, concurrency, daily and monthly quotas."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    user_per_minute: int = _limit(20, "turns per minute per end user (the verified user, else the caller's IP)")
    user_burst: int = _limit(5, f"turns per {BURST_SECONDS} seconds per end user")
    client_per_minute: int = _limit(60, "turns per minute of every end user of the client together")
    session_concurrency: int = _limit(1, "turns of one session running at once")
    turns_per_day: int = _limit(2_000, "turns per UTC day")
    turns_per_month: int = _limit(30_000, "turns per UTC calendar month")
    tokens_per_day: int = _limit(200_000, "model tokens (input + output) per UTC day")
    tokens_per_month: int = _limit(1_000_000, "model tokens (input + output) per UTC calendar month")
    schedules_per_session: int = _limit(10, "scheduled messages waiting in one session")
    schedules_per_client: int = _limit(1_000, "scheduled messages waiting in all the client's sessions")
    schedule_min_interval_minutes: int = _limit(15, "the shortest interval of a recurring scheduled message")

    @field_validator("*", mode="before")
    @classmethod
    def _json_integer(cls, value: Any) -> Any:
        """A JSON Schema integer: a number with no fraction (5 or 5.0), never `false` or "5", which pydantic's lax
        mode would turn into one (the long fuzz run had `PUT /limits` store `false` or a string as a limit)."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError("must be a whole number")
        return value

    def changed(self) -> dict[str, int]:
        """The limits that differ from the defaults (what the Client item stores)."""
        defaults = RateLimits()
        return {name: value for name, value in self.model_dump().items() if value != getattr(defaults, name)}
