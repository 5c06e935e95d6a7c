"""Time in one place, always timezone-aware UTC; what names a time zone."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def utcnow() -> datetime:
    return datetime.now(UTC)


def is_time_zone(name: object) -> bool:
    """Whether `name` is an IANA zone that tzdata knows ("Europe/London"): what a profile's or a session
    context's `timezone` must be."""
    if not isinstance(name, str) or not name:
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):  # not found, or not a key at all (an absolute or odd path)
        return False
    return True
