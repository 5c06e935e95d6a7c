"""Clock tools: the current time in a timezone, and conversion to and from UTC."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field

from openbrain.core.clock import utcnow

if TYPE_CHECKING:
    from openbrain.conversation.tools.context import ToolContext

CURRENT_TIME_DESCRIPTION = "Get the current date and time in a timezone (an IANA name such as 'Asia/Tokyo')."
CONVERT_DESCRIPTION = (
    "Convert a date and time between a timezone and UTC. direction 'to_utc' reads `time` as local time in "
    "`timezone`; 'from_utc' reads it as UTC. `time` is ISO 8601 ('2026-03-01T14:30') or 'HH:MM' (today)."
)


class CurrentTimeArgs(BaseModel):
    timezone: str = Field("UTC", description="IANA timezone name, e.g. 'Europe/London' or 'UTC'")


class ConvertArgs(BaseModel):
    time: str = Field(description="ISO 8601 date-time or 'HH:MM'")
    timezone: str = Field(description="IANA timezone name of the local side, e.g. 'America/New_York'")
    direction: Literal["to_utc", "from_utc"] = Field("to_utc", description="'to_utc' or 'from_utc'")


class _BadInput(ValueError):
    pass


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise _BadInput(f"Unknown timezone {name!r}; use an IANA name such as 'Europe/London'.") from exc


def _describe(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M (%A) UTC%z").replace("UTC+0000", "UTC")


def get_current_time(context: ToolContext, tool_call_id: str, timezone: str = "UTC") -> str:
    try:
        zone = _zone(timezone)
    except _BadInput as exc:
        return str(exc)
    return f"The current time in {zone.key} is {_describe(utcnow().astimezone(zone))}."


def _parse_time(text: str, zone: ZoneInfo) -> datetime:
    text = text.strip()
    try:
        if len(text) <= 5 and ":" in text:
            hours, minutes = (int(part) for part in text.split(":"))
            today = utcnow().astimezone(zone)
            return today.replace(hour=hours, minute=minutes, second=0, microsecond=0, tzinfo=None)
        parsed = datetime.fromisoformat(text)
        if parsed.tzinfo is not None:  # an explicit offset names the instant: read it in `zone`
            parsed = parsed.astimezone(zone)
        return parsed.replace(tzinfo=None)
    except ValueError as exc:
        raise _BadInput(f"Cannot read the time {text!r}; use '2026-03-01T14:30' or '14:30'.") from exc


def convert_to_from_utc(
    context: ToolContext, tool_call_id: str, time: str, timezone: str, direction: str = "to_utc"
) -> str:
    try:
        zone = _zone(timezone)
        if direction == "to_utc":
            local = _parse_time(time, zone).replace(tzinfo=zone)
            return f"{_describe(local)} in {zone.key} is {_describe(local.astimezone(ZoneInfo('UTC')))}."
        moment = _parse_time(time, ZoneInfo("UTC")).replace(tzinfo=ZoneInfo("UTC"))
        return f"{_describe(moment)} is {_describe(moment.astimezone(zone))} in {zone.key}."
    except _BadInput as exc:
        return str(exc)
