"""The dps command and time prompts (openbrain/domain/scheduling.py, time_prompts.py): the phrase corpus in three
zones, DST changes in two, every refusal, the command's forms, and the syntax section of docs/scheduling.md."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import openbrain.domain.time_prompts as time_prompts
from openbrain.core.errors import InvalidInputError
from openbrain.domain.scheduling import DPS_HELP, DpsCommand, ScheduleError, parse_dps
from openbrain.domain.time_prompts import When, parse_time_prompt, when_from_expression

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)  # a Friday; 10:00 in London, 05:00 in New York, 21:00 in Sydney
MIN = timedelta(minutes=15)
LONDON, NEW_YORK, SYDNEY = "Europe/London", "America/New_York", "Australia/Sydney"


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def parse(text: str, timezone: str = LONDON, now: datetime = NOW) -> When:
    return parse_time_prompt(text, now=now, timezone=timezone, min_interval=MIN)


# ------------------------------------------------------------------------------------------------ the corpus
# (phrase, zone, expression, first fire in UTC). London is UTC+0 in December, New York UTC-5, Sydney UTC+11.
CORPUS = [
    # one-time, London (now Fri 4 Dec 2026 10:00)
    ("in 20 minutes", LONDON, "at(2026-12-04T10:20:00)", utc(2026, 12, 4, 10, 20)),
    ("in 2 hours", LONDON, "at(2026-12-04T12:00:00)", utc(2026, 12, 4, 12)),
    ("in half an hour", LONDON, "at(2026-12-04T10:30:00)", utc(2026, 12, 4, 10, 30)),
    ("30 minutes from now", LONDON, "at(2026-12-04T10:30:00)", utc(2026, 12, 4, 10, 30)),
    ("in 3 days at noon", LONDON, "at(2026-12-07T12:00:00)", utc(2026, 12, 7, 12)),
    ("tomorrow evening", LONDON, "at(2026-12-05T19:00:00)", utc(2026, 12, 5, 19)),
    ("tomorrow morning", LONDON, "at(2026-12-05T09:00:00)", utc(2026, 12, 5, 9)),
    ("tomorrow afternoon", LONDON, "at(2026-12-05T15:00:00)", utc(2026, 12, 5, 15)),
    ("tomorrow at 9", LONDON, "at(2026-12-05T09:00:00)", utc(2026, 12, 5, 9)),
    ("Tomorrow at 12", LONDON, "at(2026-12-05T12:00:00)", utc(2026, 12, 5, 12)),
    ("tomorrow evening at 7", LONDON, "at(2026-12-05T19:00:00)", utc(2026, 12, 5, 19)),
    ("tomorrow at midnight", LONDON, "at(2026-12-05T00:00:00)", utc(2026, 12, 5, 0)),
    ("the day after tomorrow at 8", LONDON, "at(2026-12-06T08:00:00)", utc(2026, 12, 6, 8)),
    ("next Friday 9:30", LONDON, "at(2026-12-11T09:30:00)", utc(2026, 12, 11, 9, 30)),
    ("friday night", LONDON, "at(2026-12-11T21:00:00)", utc(2026, 12, 11, 21)),
    ("Monday at 10am", LONDON, "at(2026-12-07T10:00:00)", utc(2026, 12, 7, 10)),
    ("15th March at 2pm", LONDON, "at(2027-03-15T14:00:00)", utc(2027, 3, 15, 14)),
    ("December 25 at 9 a.m.", LONDON, "at(2026-12-25T09:00:00)", utc(2026, 12, 25, 9)),
    ("at 17:00", LONDON, "at(2026-12-04T17:00:00)", utc(2026, 12, 4, 17)),
    ("at 5pm", LONDON, "at(2026-12-04T17:00:00)", utc(2026, 12, 4, 17)),
    ("at 11 pm.", LONDON, "at(2026-12-04T23:00:00)", utc(2026, 12, 4, 23)),
    ("at noon", LONDON, "at(2026-12-04T12:00:00)", utc(2026, 12, 4, 12)),
    ("tonight", LONDON, "at(2026-12-04T21:00:00)", utc(2026, 12, 4, 21)),
    ("this afternoon", LONDON, "at(2026-12-04T15:00:00)", utc(2026, 12, 4, 15)),
    ("this evening", LONDON, "at(2026-12-04T19:00:00)", utc(2026, 12, 4, 19)),
    ("on 2027-01-05 at 10:00", LONDON, "at(2027-01-05T10:00:00)", utc(2027, 1, 5, 10)),
    ("2027-06-15 08:00", LONDON, "at(2027-06-15T08:00:00)", utc(2027, 6, 15, 7)),  # BST: 07:00 UTC
    ("25/12/2026 at 9am", LONDON, "at(2026-12-25T09:00:00)", utc(2026, 12, 25, 9)),
    ("12/25/2026 9:00", LONDON, "at(2026-12-25T09:00:00)", utc(2026, 12, 25, 9)),
    ("on the 31st at 9am", LONDON, "at(2026-12-31T09:00:00)", utc(2026, 12, 31, 9)),
    ("monday feb 1 at 9am", LONDON, "at(2027-02-01T09:00:00)", utc(2027, 2, 1, 9)),
    ("in 2h", LONDON, "at(2026-12-04T12:00:00)", utc(2026, 12, 4, 12)),
    # recurring, London
    ("every day at 8am", LONDON, "cron(0 8 * * ? *)", utc(2026, 12, 5, 8)),
    ("each day at 08:00", LONDON, "cron(0 8 * * ? *)", utc(2026, 12, 5, 8)),
    ("every day at 10am", LONDON, "cron(0 10 * * ? *)", utc(2026, 12, 5, 10)),  # now is 10:00: strictly after
    ("every Friday at 10:30", LONDON, "cron(30 10 ? * FRI *)", utc(2026, 12, 4, 10, 30)),
    ("daily at 7:15", LONDON, "cron(15 7 * * ? *)", utc(2026, 12, 5, 7, 15)),
    ("every weekday at 9", LONDON, "cron(0 9 ? * MON,TUE,WED,THU,FRI *)", utc(2026, 12, 7, 9)),
    ("every Monday and Thursday at 18:00", LONDON, "cron(0 18 ? * MON,THU *)", utc(2026, 12, 7, 18)),
    ("every Sunday morning", LONDON, "cron(0 9 ? * SUN *)", utc(2026, 12, 6, 9)),
    ("mondays at 10:00", LONDON, "cron(0 10 ? * MON *)", utc(2026, 12, 7, 10)),
    ("every tuesday 8pm", LONDON, "cron(0 20 ? * TUE *)", utc(2026, 12, 8, 20)),
    ("every weekend at 10am", LONDON, "cron(0 10 ? * SAT,SUN *)", utc(2026, 12, 5, 10)),
    ("every morning", LONDON, "cron(0 9 * * ? *)", utc(2026, 12, 5, 9)),
    ("every evening at 7", LONDON, "cron(0 19 * * ? *)", utc(2026, 12, 4, 19)),
    ("on the 1st of every month at noon", LONDON, "cron(0 12 1 * ? *)", utc(2027, 1, 1, 12)),
    ("every month on the 15th at 9am", LONDON, "cron(0 9 15 * ? *)", utc(2026, 12, 15, 9)),
    ("every first Monday of the month at 9am", LONDON, "cron(0 9 ? * 2#1 *)", utc(2026, 12, 7, 9)),
    ("every year on March 5 at 9am", LONDON, "cron(0 9 5 3 ? *)", utc(2027, 3, 5, 9)),
    ("every 2 hours", LONDON, "rate(2 hours)", utc(2026, 12, 4, 12)),
    ("every 30 minutes", LONDON, "rate(30 minutes)", utc(2026, 12, 4, 10, 30)),
    ("every 15 minutes", LONDON, "rate(15 minutes)", utc(2026, 12, 4, 10, 15)),  # exactly the minimum
    ("hourly", LONDON, "rate(1 hour)", utc(2026, 12, 4, 11)),
    ("every hour", LONDON, "rate(1 hour)", utc(2026, 12, 4, 11)),
    # New York (now 05:00 EST)
    ("at 9am", NEW_YORK, "at(2026-12-04T09:00:00)", utc(2026, 12, 4, 14)),
    ("in 20 minutes", NEW_YORK, "at(2026-12-04T05:20:00)", utc(2026, 12, 4, 10, 20)),
    ("tonight", NEW_YORK, "at(2026-12-04T21:00:00)", utc(2026, 12, 5, 2)),
    ("tomorrow evening", NEW_YORK, "at(2026-12-05T19:00:00)", utc(2026, 12, 6, 0)),
    ("15th March at 2pm", NEW_YORK, "at(2027-03-15T14:00:00)", utc(2027, 3, 15, 18)),  # EDT from 14 March
    ("every day at 8am", NEW_YORK, "cron(0 8 * * ? *)", utc(2026, 12, 4, 13)),
    ("every weekday at 9", NEW_YORK, "cron(0 9 ? * MON,TUE,WED,THU,FRI *)", utc(2026, 12, 4, 14)),
    # Sydney (now Fri 4 Dec 21:00 AEDT, UTC+11; AEST, UTC+10, in June)
    ("tomorrow morning", SYDNEY, "at(2026-12-05T09:00:00)", utc(2026, 12, 4, 22)),
    ("in 2 hours", SYDNEY, "at(2026-12-04T23:00:00)", utc(2026, 12, 4, 12)),
    ("on 2027-06-15 at 10:00", SYDNEY, "at(2027-06-15T10:00:00)", utc(2027, 6, 15, 0)),
    ("every day at 8am", SYDNEY, "cron(0 8 * * ? *)", utc(2026, 12, 4, 21)),
]


@pytest.mark.parametrize(("text", "timezone", "expression", "first"), CORPUS)
def test_a_time_prompt_resolves_to_its_expression_and_first_fire(
    text: str, timezone: str, expression: str, first: datetime
) -> None:
    # when
    when = parse(text, timezone)
    # then
    assert (when.expression, when.first, when.timezone) == (expression, first, timezone)
    assert when.recurring == (not expression.startswith("at("))
    assert when.next_after(NOW) == first  # the expression itself fires first at `first`


def test_the_corpus_is_large_enough() -> None:
    assert len(CORPUS) >= 40
    assert {timezone for _, timezone, _, _ in CORPUS} == {LONDON, NEW_YORK, SYDNEY}


@pytest.mark.parametrize(
    ("text", "description"),
    [
        ("tomorrow evening", "Sat 5 Dec 2026 19:00 Europe/London"),
        ("every day at 8am", "every day at 08:00 (Europe/London)"),
        ("every Monday, Wednesday and Friday at 18:00", "every Monday, Wednesday and Friday at 18:00 (Europe/London)"),
        ("every 2 hours", "every 2 hours"),
    ],
)
def test_the_description_says_when_for_people(text: str, description: str) -> None:
    assert parse(text).description == description


# ------------------------------------------------------------------------------------------------ refusals
REFUSALS = [
    # the past
    ("yesterday at 5", LONDON, "in the past"),
    ("yesterday at 5pm", LONDON, "in the past"),
    ("last friday at 3pm", LONDON, "in the past"),
    # a day wholly in the past is refused as such, not asked for a time ("yesterday at 9am" would be refused too)
    ("yesterday", LONDON, '"yesterday" is in the past: say a time to come, e.g. "tomorrow at 9am"'),
    ("last Monday", LONDON, '"last Monday" is in the past'),
    ("the day before yesterday", LONDON, "in the past"),
    ("3 days ago", LONDON, "in the past"),
    ("on the 3rd", LONDON, "in the past"),
    ("last week", LONDON, "in the past"),
    ("last month", LONDON, "in the past"),
    ("last year", LONDON, "in the past"),
    ("in 0 minutes", LONDON, "in the past"),
    ("at 9am", LONDON, 'That time has passed today: say "tomorrow at 09:00"'),
    ("at midnight", LONDON, 'say "tomorrow at 00:00"'),
    ("tonight", SYDNEY, "That time has passed today"),  # 21:00 there is now
    ("at 5", SYDNEY, "has passed"),  # both 05:00 and 17:00 have passed: the past, not the ambiguity
    # ambiguous
    ("at 5", LONDON, "ambiguous: say 5am, 5pm or 17:00"),
    ("tomorrow at 3", LONDON, "ambiguous: say 3am, 3pm or 15:00"),
    ("every day at 7", LONDON, "ambiguous: say 7am, 7pm or 19:00"),
    ("next month", LONDON, "does not say which day"),
    ("next year", LONDON, "does not say which day"),
    # a day without a time: the example is the person's words with a time only when those lead to a time to come
    ("tomorrow", LONDON, '"tomorrow" does not say at what time: e.g. "tomorrow at 9am"'),
    ("on friday", LONDON, 'does not say at what time: e.g. "on friday at 9am"'),
    ("today", LONDON, '"today" does not say at what time: e.g. "tomorrow at 9am"'),  # 9am today has passed
    ("on the 4th", LONDON, 'does not say at what time: e.g. "tomorrow at 9am"'),
    ("this week", LONDON, "does not say at what time"),
    ("every day", LONDON, 'does not say at what time: e.g. "every day at 9am"'),
    ("every monday", LONDON, 'does not say at what time: e.g. "every monday at 9am"'),
    ("every week", LONDON, 'does not say at what time: e.g. "every day at 9am"'),  # "every week at 9am": which day?
    ("weekly at 9am", LONDON, "does not say which day of the week"),
    ("every day at 9am and 5pm", LONDON, "more than one time of day"),
    # unparseable
    ("whenever you like", LONDON, "not a time I understand"),
    ("blue", LONDON, "not a time I understand"),
    ("on February 30 at 9am", LONDON, "not a time I understand"),
    ("tomorrow at 9 or so", LONDON, "not a time I understand"),
    ("every blue moon", LONDON, "not a time I understand"),
    ("   ", LONDON, "No time prompt"),
    ("at 25:00", LONDON, "not a time of day"),
    ("at 9:75", LONDON, "not a time of day"),
    ("at 13pm", LONDON, "not a time of day"),
    ("at 24", LONDON, "not a time of day"),
    # what a schedule cannot say
    ("every 5 minutes", LONDON, "too often: at most every 15 minutes"),
    ("every 10 minutes", LONDON, "too often"),
    ("every other day at 9am", LONDON, "cannot repeat every 2 days"),
    ("every 2 weeks on monday at 9am", LONDON, "cannot repeat every 2"),
    ("every day at 8am until friday", LONDON, "no end dates"),
    ("every year on February 30 at 9am", LONDON, "That day never comes"),
    # a reading that drops part of what was written
    ("evening fri 5", LONDON, "not a time I understand"),
    ("every hour at :15", LONDON, "not a time I understand"),
    ("9am daily each monday", LONDON, "not a time I understand"),
    ("february at 3pm", LONDON, "not a time I understand"),
    ("in monday", LONDON, "does not say at what time"),
    ("every 1.5 hours", LONDON, "whole units"),
    ("at 9.30", LONDON, "write times as 9:30"),
    ("5/1/2027 at 9am", LONDON, "write 2027-01-05 or 2027-05-01"),
    ("on the 1st at 9am", LONDON, "in the past (Tue 1 Dec 2026 09:00"),
    # a wall time that does not exist: clocks go forward at 01:00 in London, 02:00 in New York
    ("on 2027-03-28 at 01:30", LONDON, "does not exist in Europe/London"),
    ("on 2027-03-14 at 02:30", NEW_YORK, "does not exist in America/New_York"),
    # time zones
    ("tomorrow at 9", "Mars/Olympus_Mons", "not a known time zone"),
    ("tomorrow at 9", "", "not a known time zone"),
    ("tomorrow at 9", "../../etc/passwd", "not a known time zone"),
]


@pytest.mark.parametrize(("text", "timezone", "message"), REFUSALS)
def test_a_time_prompt_that_cannot_be_scheduled_is_refused_with_what_to_write(
    text: str, timezone: str, message: str
) -> None:
    with pytest.raises(ScheduleError) as caught:
        parse(text, timezone)
    assert message in caught.value.message
    assert caught.value.code == "invalid_input"
    assert isinstance(caught.value, InvalidInputError)


@pytest.mark.parametrize(("text", "timezone"), [(text, timezone) for text, timezone, message in REFUSALS
                                               if "does not say at what time" in message or "in the past:" in message])
def test_the_example_a_refusal_gives_schedules_a_time_to_come(text: str, timezone: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        parse(text, timezone)
    [example] = re.findall(r'e\.g\. "([^"]+)"', caught.value.message)
    assert parse(example, timezone).first > NOW


def test_the_minimum_interval_is_the_callers() -> None:
    assert parse_time_prompt("every 5 minutes", now=NOW, timezone=LONDON, min_interval=timedelta(minutes=5))
    with pytest.raises(ScheduleError, match="at most every 2 hours"):
        parse_time_prompt("every hour", now=NOW, timezone=LONDON, min_interval=timedelta(hours=2))


def test_a_minimum_interval_above_a_day_refuses_a_daily_cron() -> None:
    with pytest.raises(ScheduleError, match="too often: at most every 48 hours"):
        parse_time_prompt("every day at 8am", now=NOW, timezone=LONDON, min_interval=timedelta(days=2))
    assert parse_time_prompt("every Monday at 8am", now=NOW, timezone=LONDON, min_interval=timedelta(days=2))


def test_now_must_be_aware() -> None:
    with pytest.raises(ValueError, match="aware"):
        parse_time_prompt("in 5 minutes", now=datetime(2026, 12, 4, 10), timezone=LONDON, min_interval=MIN)


# ------------------------------------------------------------------------------------------------ DST
def fires(when: When, after: datetime, count: int) -> list[datetime]:
    out: list[datetime] = []
    for _ in range(count):
        nxt = when.next_after(after)
        assert nxt is not None
        out.append(nxt)
        after = nxt
    return out


@pytest.mark.parametrize(
    ("timezone", "start", "expected"),
    [
        # London: BST from 28 March 2027, GMT again from 31 October 2027
        (LONDON, utc(2027, 3, 26, 12), [utc(2027, 3, 27, 8), utc(2027, 3, 28, 7), utc(2027, 3, 29, 7)]),
        (LONDON, utc(2027, 10, 29, 12), [utc(2027, 10, 30, 7), utc(2027, 10, 31, 8), utc(2027, 11, 1, 8)]),
        # New York: EDT from 14 March 2027, EST again from 7 November 2027
        (NEW_YORK, utc(2027, 3, 12, 18), [utc(2027, 3, 13, 13), utc(2027, 3, 14, 12), utc(2027, 3, 15, 12)]),
        (NEW_YORK, utc(2027, 11, 5, 18), [utc(2027, 11, 6, 12), utc(2027, 11, 7, 13), utc(2027, 11, 8, 13)]),
    ],
)
def test_a_cron_keeps_its_local_wall_time_across_a_dst_change(
    timezone: str, start: datetime, expected: list[datetime]
) -> None:
    # given "every day at 8am", made before the change
    when = parse("every day at 8am", timezone, now=start)
    # then it fires at 08:00 local on each side of the change (its UTC time moves by an hour)
    assert fires(when, start, 3) == expected
    assert {fire.astimezone(ZoneInfo(timezone)).strftime("%H:%M") for fire in expected} == {"08:00"}


@pytest.mark.parametrize(
    ("timezone", "expression", "start", "expected"),
    [
        # 01:30 does not exist in London on 28 March 2027: skipped that day, as Scheduler does
        (LONDON, "cron(30 1 * * ? *)", utc(2027, 3, 26, 12), [utc(2027, 3, 27, 1, 30), utc(2027, 3, 29, 0, 30)]),
        # 01:30 happens twice on 31 October 2027: it runs once, the first time (01:30 BST = 00:30 UTC)
        (
            LONDON,
            "cron(30 1 * * ? *)",
            utc(2027, 10, 29, 12),
            [utc(2027, 10, 30, 0, 30), utc(2027, 10, 31, 0, 30), utc(2027, 11, 1, 1, 30)],
        ),
        # New York: 02:30 does not exist on 14 March 2027; 01:30 happens twice on 7 November 2027
        (NEW_YORK, "cron(30 2 * * ? *)", utc(2027, 3, 12, 18), [utc(2027, 3, 13, 7, 30), utc(2027, 3, 15, 6, 30)]),
        (
            NEW_YORK,
            "cron(30 1 * * ? *)",
            utc(2027, 11, 5, 18),
            [utc(2027, 11, 6, 5, 30), utc(2027, 11, 7, 5, 30), utc(2027, 11, 8, 6, 30)],
        ),
    ],
)
def test_a_cron_skips_a_time_that_does_not_exist_and_runs_a_repeated_one_once(
    timezone: str, expression: str, start: datetime, expected: list[datetime]
) -> None:
    when = when_from_expression(expression, timezone, first=expected[0], description="test")
    assert fires(when, start, len(expected)) == expected


@pytest.mark.parametrize(("timezone", "start"), [(LONDON, utc(2027, 3, 27, 23)), (NEW_YORK, utc(2027, 11, 7, 3))])
def test_a_rate_counts_absolute_time_across_a_dst_change(timezone: str, start: datetime) -> None:
    # given "every 2 hours" made an hour before the clocks change
    when = parse("every 2 hours", timezone, now=start)
    # then its fires are 2 hours of real time apart, whatever the local clock says
    times = fires(when, start, 4)
    assert times[0] == start + timedelta(hours=2)
    assert [b - a for a, b in itertools.pairwise(times)] == [timedelta(hours=2)] * 3
    local_gaps = {
        b.astimezone(ZoneInfo(timezone)).replace(tzinfo=None) - a.astimezone(ZoneInfo(timezone)).replace(tzinfo=None)
        for a, b in itertools.pairwise([start, *times])
    }
    assert local_gaps != {timedelta(hours=2)}  # the wall clock jumped meanwhile: the rate did not follow it


def test_in_minutes_is_real_time_across_the_gap() -> None:
    # given it is 00:50 GMT on 28 March 2027 in London; at 01:00 the clocks go to 02:00 BST
    now = utc(2027, 3, 28, 0, 50)
    # when
    when = parse("in 20 minutes", now=now)
    # then it is 20 real minutes later, written as the local (BST) wall time Scheduler reads
    assert when.first == utc(2027, 3, 28, 1, 10)
    assert when.expression == "at(2027-03-28T02:10:00)"


def test_a_repeated_wall_time_means_the_first_of_the_two() -> None:
    # 01:30 on 31 October 2027 happens at 00:30 UTC (BST) and again at 01:30 UTC (GMT)
    when = parse("on 2027-10-31 at 01:30", now=utc(2027, 10, 30, 12))
    assert when.first == utc(2027, 10, 31, 0, 30)
    assert when.next_after(utc(2027, 10, 31, 0, 30)) is None


# ------------------------------------------------------------------------------------------------ next_after
def test_a_one_time_when_fires_once() -> None:
    when = parse("tomorrow at 9")
    assert when.next_after(NOW) == utc(2026, 12, 5, 9)
    assert when.next_after(utc(2026, 12, 5, 8, 59, 59)) == utc(2026, 12, 5, 9)
    assert when.next_after(utc(2026, 12, 5, 9)) is None  # strictly after
    assert when.next_after(utc(2027, 1, 1)) is None


def test_a_rate_is_anchored_at_its_first_fire() -> None:
    when = parse("every 30 minutes")  # first 10:30
    assert when.next_after(utc(2026, 12, 4, 10, 0)) == utc(2026, 12, 4, 10, 30)
    assert when.next_after(utc(2026, 12, 4, 10, 30)) == utc(2026, 12, 4, 11, 0)
    assert when.next_after(utc(2026, 12, 5, 7, 45, 1)) == utc(2026, 12, 5, 8, 0)


def test_next_after_needs_an_aware_time() -> None:
    with pytest.raises(ValueError, match="aware"):
        parse("every day at 8am").next_after(datetime(2026, 12, 4, 10))


@pytest.mark.parametrize("text", ["in 20 minutes", "every weekday at 9", "every 2 hours", "every Sunday morning"])
def test_a_when_rebuilt_from_what_was_stored_fires_the_same(text: str) -> None:
    # given a When and what the session stores of it
    when = parse(text, NEW_YORK)
    # when it is rebuilt
    rebuilt = when_from_expression(when.expression, when.timezone, first=when.first, description=when.description)
    # then it is the same, and fires the same
    assert rebuilt == when
    assert fires(rebuilt, NOW, 1 if not when.recurring else 5) == fires(when, NOW, 1 if not when.recurring else 5)


@pytest.mark.parametrize(
    ("expression", "timezone", "message"),
    [
        ("cron(0 8 * * * *)", LONDON, "not a cron expression this service writes"),  # no "?"
        ("cron(0 8 * * ? 2027)", LONDON, "not a cron expression this service writes"),
        ("cron(0 99 * * ? *)", LONDON, "not a valid cron expression"),
        ("every day", LONDON, "not a Scheduler expression"),
        ("rate(2 hours)", "Nowhere/Land", "not a known time zone"),
    ],
)
def test_a_stored_expression_that_cannot_be_read_is_refused(expression: str, timezone: str, message: str) -> None:
    with pytest.raises(ScheduleError, match=message):
        when_from_expression(expression, timezone, first=NOW, description="x")


def test_scheduler_day_numbers_are_read_from_sunday() -> None:
    # Scheduler: 1 = Sunday ... 7 = Saturday; "2#1" = the first Monday. 6 Dec 2026 is a Sunday.
    sunday = when_from_expression("cron(0 9 ? * 1 *)", LONDON, first=NOW, description="x")
    first_monday = when_from_expression("cron(0 9 ? * 2#1 *)", LONDON, first=NOW, description="x")
    assert sunday.next_after(NOW) == utc(2026, 12, 6, 9)
    assert first_monday.next_after(utc(2026, 12, 8)) == utc(2027, 1, 4, 9)


RECURRING = [
    "every day at 8am",
    "every weekday at 9",
    "every Monday and Thursday at 18:00",
    "every Sunday at 01:30",
    "every day at 02:30",
    "on the 1st of every month at noon",
    "every first Monday of the month at 9am",
    "every 2 hours",
    "every 45 minutes",
]
ZONES = [LONDON, NEW_YORK, SYDNEY, "Asia/Kolkata", "UTC", "America/Sao_Paulo"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=st.sampled_from(RECURRING),
    timezone=st.sampled_from(ZONES),
    start=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2030, 12, 31), timezones=st.just(UTC)),
)
def test_next_after_is_strictly_increasing_and_keeps_a_crons_wall_time(
    text: str, timezone: str, start: datetime
) -> None:
    when = parse(text, timezone, now=start)
    times = fires(when, when.first, 6)
    assert all(a < b for a, b in itertools.pairwise([when.first, *times]))
    if when.expression.startswith("cron("):
        minute, hour = when.expression[5:].split()[:2]
        local = {t.astimezone(ZoneInfo(timezone)).strftime("%H:%M") for t in [when.first, *times]}
        assert local == {f"{int(hour):02d}:{int(minute):02d}"}


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=60))
def test_any_time_prompt_either_schedules_or_is_refused(text: str) -> None:
    try:
        when = parse(text)
    except ScheduleError:
        return
    assert when.first > NOW


WORDS = re.findall(
    r"\S+",
    "every each daily on the 1st 2nd 31st last first of month week day year at in 5 15 0 99 12:00 9am pm "
    "am minutes hours and until monday fri march feb 29 2027-02-29 tomorrow next noon midnight evening "
    "night tonight other weekday weekend half hour 5/1 25/12",
)


@settings(max_examples=200, deadline=None)
@given(
    words=st.lists(st.sampled_from(WORDS), min_size=1, max_size=7),
    timezone=st.sampled_from([LONDON, NEW_YORK, "Asia/Kathmandu"]),
)
def test_word_salad_either_schedules_something_that_fires_or_is_refused(words: list[str], timezone: str) -> None:
    try:
        when = parse(" ".join(words), timezone)
    except ScheduleError:
        return
    assert when.first > NOW
    assert when.next_after(NOW) == when.first
    if when.recurring:
        later = when.next_after(when.first)
        assert later is not None and later > when.first


# ------------------------------------------------------------------------------------------------ dps
@pytest.mark.parametrize(
    ("message", "command"),
    [
        ("dps c in 20 minutes\n\nsay hi", DpsCommand("chatbot", "in 20 minutes", "say hi")),
        (
            "dps user every day at 8am\nteach me about a monkey\nsecond line",
            DpsCommand("user", "every day at 8am", "teach me about a monkey\nsecond line"),
        ),
        (
            "DPS C tomorrow evening\n\n  indented\n\nlast  ",
            DpsCommand("chatbot", "tomorrow evening", "  indented\n\nlast"),
        ),
        ("  \n dps u  at 17:00 \r\n\r\nstretch", DpsCommand("user", "at 17:00", "stretch")),
        ("dps chatbot in 1 minute\nping", DpsCommand("chatbot", "in 1 minute", "ping")),
        ("dps", DpsCommand(None, "", "")),
        ("dps help", DpsCommand(None, "", "")),
        ("  DPS HELP  ", DpsCommand(None, "", "")),
        ("dps\n", DpsCommand(None, "", "")),
    ],
)
def test_a_dps_command_is_read(message: str, command: DpsCommand) -> None:
    assert parse_dps(message) == command


@pytest.mark.parametrize(
    "message", ["hello", "dpsx c in 5 minutes\nhi", "please dps c in 5 minutes\nhi", "", "   ", "dp s", "d p s help"]
)
def test_a_message_that_is_not_a_dps_command_is_a_chat_turn(message: str) -> None:
    assert parse_dps(message) is None


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ("dps x in 5 minutes\nhi", '"x" is not a recipient: use user (u) or chatbot (c)'),
        ("dps bot in 5 minutes\nhi", '"bot" is not a recipient'),
        ("dps c\nhi", "No time prompt"),
        ("dps user   \n\nhi", "No time prompt"),
        ("dps c in 5 minutes", 'No prompt: write what to send on the next line, below "dps c in 5 minutes".'),
        # bash's double quotes keep a typed \n as two characters: the refusal says how to write a new line
        ("dps u in 20 minutes\\nStretch",
         "(a typed \\n is not a new line: in bash, write $'dps u in 20 minutes\\nStretch')."),
        ("dps c in 5 minutes\n\n   \n", "No prompt"),
    ],
)
def test_a_malformed_dps_command_names_the_part_not_understood(message: str, error: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        parse_dps(message)
    assert error in caught.value.message


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(), st.text().map(lambda rest: "dps " + rest), st.text().map(lambda rest: "dps c " + rest)))
def test_parse_dps_raises_nothing_but_schedule_error(message: str) -> None:
    try:
        command = parse_dps(message)
    except ScheduleError:
        return
    if command is not None and command.recipient is not None:
        assert command.time_prompt and command.prompt.strip()
        assert "\n" not in command.time_prompt


def test_the_help_explains_the_syntax_with_examples_that_work() -> None:
    assert "user" in DPS_HELP and "chatbot" in DPS_HELP
    examples = re.findall(r"^    (dps .+)\n((?:\n?    (?!dps).+\n)+)", DPS_HELP.split("Examples:")[1], re.M)
    assert len(examples) >= 2
    for head, body in examples:
        command = parse_dps(head + "\n" + "\n".join(line.strip() for line in body.splitlines()))
        assert command is not None and command.recipient in {"user", "chatbot"}
        assert parse(command.time_prompt).first > NOW


# ------------------------------------------------------------------------------------------------ docs
def _time_prompts_section() -> str:
    doc = time_prompts.__doc__ or ""
    return doc[doc.index("## Time prompts") :].rstrip() + "\n"


def test_the_docs_time_prompts_section_is_the_modules() -> None:
    docs = (ROOT / "docs/scheduling.md").read_text()
    assert docs.startswith("# Scheduled messages\n")  # the lead's sections may come before and after this one
    section = docs[docs.index("## Time prompts") :]
    following = section.find("\n## ", 1)
    assert (section if following < 0 else section[:following]).rstrip() + "\n" == _time_prompts_section()


def test_every_example_in_the_docs_resolves_as_written() -> None:
    rows = re.findall(r"^\| `([^`]+)` \| `([^`]+)` \| ([^|]+) \|$", _time_prompts_section(), re.M)
    assert len(rows) >= 20
    for text, expression, confirmed in rows:
        when = parse(text)
        assert when.expression == expression, text
        assert when.description in {confirmed.strip(), f"{confirmed.strip()} ({LONDON})"}, text


def test_the_documented_defaults_are_the_ones_used() -> None:
    assert time_prompts.PARTS_OF_DAY == {"morning": 9, "afternoon": 15, "evening": 19, "night": 21}
    for word, hour in time_prompts.PARTS_OF_DAY.items():
        assert f"{word} {hour:02d}:00" in _time_prompts_section()
        assert parse(f"tomorrow {word}").first == utc(2026, 12, 5, hour)
