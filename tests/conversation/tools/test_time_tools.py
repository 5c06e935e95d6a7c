"""get_current_time and convert_to_from_utc, called directly with a ToolContext."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from openbrain.conversation.tools.context import ToolContext
from openbrain.conversation.tools.time_tools import convert_to_from_utc, get_current_time

# "2026-11-22 11:57 (Sunday) UTC+0900" (or plain "UTC" when the offset is zero)
_MOMENT = re.compile(r"(\d{4}-\d\d-\d\d \d\d:\d\d) \((\w+)\) UTC([+-]\d{4})?")


def _offset(text: str | None) -> timedelta:
    if not text:
        return timedelta(0)
    sign = -1 if text[0] == "-" else 1
    return sign * timedelta(hours=int(text[1:3]), minutes=int(text[3:5]))


@pytest.mark.parametrize(
    "timezone", ["UTC", "Asia/Tokyo", "Asia/Kolkata", "America/St_Johns", "America/Los_Angeles", "Europe/London"]
)
def test_current_time_is_now_in_the_requested_timezone(offline_context: ToolContext, timezone: str) -> None:
    # given
    zone = ZoneInfo(timezone)

    # when
    reply = get_current_time(offline_context, "call_1", timezone=timezone)
    expected = datetime.now(zone)

    # then
    assert reply.startswith(f"The current time in {timezone} is ")
    match = _MOMENT.search(reply)
    assert match, reply
    local, weekday, offset = match.groups()
    assert _offset(offset) == expected.utcoffset()
    shown = datetime.strptime(local, "%Y-%m-%d %H:%M")
    assert abs(shown - expected.replace(tzinfo=None, second=0, microsecond=0)) <= timedelta(minutes=1)
    assert weekday == shown.strftime("%A")


def test_current_time_defaults_to_utc(offline_context: ToolContext) -> None:
    reply = get_current_time(offline_context, "call_1")

    assert reply.startswith("The current time in UTC is ")
    match = _MOMENT.search(reply)
    assert match and match.group(3) is None


def test_current_time_trims_spaces_around_the_timezone(offline_context: ToolContext) -> None:
    assert get_current_time(offline_context, "call_1", timezone="  Asia/Tokyo ").startswith(
        "The current time in Asia/Tokyo is "
    )


@pytest.mark.parametrize("timezone", ["Mars/Olympus_Mons", "Tokio", "", "../../etc/passwd", "/etc/localtime"])
def test_current_time_answers_an_unknown_timezone_with_a_message(
    offline_context: ToolContext, timezone: str
) -> None:
    reply = get_current_time(offline_context, "call_1", timezone=timezone)

    assert reply == f"Unknown timezone {timezone!r}; use an IANA name such as 'Europe/London'."


@pytest.mark.parametrize(
    ("time", "timezone", "expected"),
    [
        # winter: New York is UTC-5
        ("2026-01-15T09:00", "America/New_York",
         "2026-01-15 09:00 (Thursday) UTC-0500 in America/New_York is 2026-01-15 14:00 (Thursday) UTC."),
        # summer: the same wall-clock time is an hour earlier in UTC
        ("2026-07-15T09:00", "America/New_York",
         "2026-07-15 09:00 (Wednesday) UTC-0400 in America/New_York is 2026-07-15 13:00 (Wednesday) UTC."),
        # crossing midnight backwards
        ("2026-01-01T01:00", "Asia/Tokyo",
         "2026-01-01 01:00 (Thursday) UTC+0900 in Asia/Tokyo is 2025-12-31 16:00 (Wednesday) UTC."),
    ],
)
def test_convert_local_time_to_utc(offline_context: ToolContext, time: str, timezone: str, expected: str) -> None:
    assert convert_to_from_utc(offline_context, "call_1", time=time, timezone=timezone) == expected


def test_convert_to_utc_on_the_day_clocks_spring_forward(offline_context: ToolContext) -> None:
    # given: US clocks jump from 02:00 EST to 03:00 EDT on 2026-03-08
    before = convert_to_from_utc(offline_context, "c1", time="2026-03-08T01:30", timezone="America/New_York")
    after = convert_to_from_utc(offline_context, "c2", time="2026-03-08T03:30", timezone="America/New_York")

    # then: two wall-clock hours apart are one real hour apart
    assert before.endswith("is 2026-03-08 06:30 (Sunday) UTC.")
    assert "UTC-0500" in before
    assert after.endswith("is 2026-03-08 07:30 (Sunday) UTC.")
    assert "UTC-0400" in after


def test_convert_from_utc_across_a_dst_change(offline_context: ToolContext) -> None:
    # given: the UK moves to BST at 01:00 UTC on 2026-03-29
    before = convert_to_from_utc(
        offline_context, "c1", time="2026-03-29T00:30", timezone="Europe/London", direction="from_utc"
    )
    after = convert_to_from_utc(
        offline_context, "c2", time="2026-03-29T01:30", timezone="Europe/London", direction="from_utc"
    )

    assert before == "2026-03-29 00:30 (Sunday) UTC is 2026-03-29 00:30 (Sunday) UTC in Europe/London."
    assert after == "2026-03-29 01:30 (Sunday) UTC is 2026-03-29 02:30 (Sunday) UTC+0100 in Europe/London."


def test_convert_from_utc_then_back_gives_the_original_time(offline_context: ToolContext) -> None:
    there = convert_to_from_utc(
        offline_context, "c1", time="2026-10-25T00:15", timezone="Australia/Sydney", direction="from_utc"
    )
    local = _MOMENT.findall(there)[1][0].replace(" ", "T")

    back = convert_to_from_utc(offline_context, "c2", time=local, timezone="Australia/Sydney", direction="to_utc")

    assert back.endswith("is 2026-10-25 00:15 (Sunday) UTC.")


def test_convert_reads_hh_mm_as_today_in_the_timezone(offline_context: ToolContext) -> None:
    reply = convert_to_from_utc(offline_context, "call_1", time="12:00", timezone="Asia/Tokyo")

    (local, _, local_offset), (utc, _, utc_offset) = _MOMENT.findall(reply)
    assert local == datetime.now(ZoneInfo("Asia/Tokyo")).strftime("%Y-%m-%d") + " 12:00"
    assert (local_offset, utc_offset) == ("+0900", "")
    as_time = "%Y-%m-%d %H:%M"
    assert datetime.strptime(utc, as_time) == datetime.strptime(local, as_time) - timedelta(hours=9)


def test_convert_honours_an_explicit_utc_offset_in_the_time(offline_context: ToolContext) -> None:
    # given: 12:00 at UTC+2 is 10:00 UTC, which is 10:00 in London in January
    reply = convert_to_from_utc(
        offline_context, "call_1", time="2026-01-15T12:00+02:00", timezone="Europe/London", direction="from_utc"
    )

    # then: the offset is not silently dropped
    assert reply.endswith("is 2026-01-15 10:00 (Thursday) UTC in Europe/London."), reply


@pytest.mark.parametrize("time", ["half past two", "25:00", "2026-13-01T10:00", "", "12:30:45"])
def test_convert_answers_an_unreadable_time_with_a_message(offline_context: ToolContext, time: str) -> None:
    reply = convert_to_from_utc(offline_context, "call_1", time=time, timezone="Europe/Paris")

    assert reply.startswith(f"Cannot read the time {time.strip()!r}; use '2026-03-01T14:30' or '14:30'.")


@pytest.mark.parametrize("direction", ["to_utc", "from_utc"])
def test_convert_answers_an_unknown_timezone_with_a_message(offline_context: ToolContext, direction: str) -> None:
    reply = convert_to_from_utc(
        offline_context, "call_1", time="2026-01-15T09:00", timezone="Atlantis/Capital", direction=direction
    )

    assert reply == "Unknown timezone 'Atlantis/Capital'; use an IANA name such as 'Europe/London'."


def test_time_tools_record_no_event_and_no_lead(offline_context: ToolContext) -> None:
    get_current_time(offline_context, "c1", timezone="Asia/Tokyo")
    convert_to_from_utc(offline_context, "c2", time="10:00", timezone="Asia/Tokyo")

    assert (offline_context.events, offline_context.lead, offline_context.ended) == ([], None, False)
