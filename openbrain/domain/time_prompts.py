"""Time prompts: natural-language times turned into EventBridge Scheduler expressions (the `dps` command's
and the `schedule_message` tool's; the command itself is `openbrain.domain.scheduling`).

Pure: no I/O, no AWS, no clock (`now` is always passed in). What parses what:

- **dateparser** resolves one-time prompts ("tomorrow at 19:00", "next Friday 9:30", "15th March at 2pm",
  "in 20 minutes", "on 2027-01-05 at 10:00") against `now`'s wall time in the zone, preferring future dates.
- **recurrent** turns recurring prompts ("every weekday at 9", "on the 1st of every month at noon") into an RFC 5545
  RRULE, which this module maps onto Scheduler's `cron(...)` or `rate(...)`.
- **croniter** computes a cron's fire times in the zone (`When.next_after`); the glue here makes it agree with
  Scheduler on DST changes (below).
- **zoneinfo** (the standard library, with `tzdata`) knows the zones; an unknown IANA name is refused.

The glue in this module only rewrites the words those parsers do not know (vague times of day, am/pm, bare hours)
and refuses what they would guess at.

## Time prompts

A time prompt says when a scheduled message is sent. It is read in the session's time zone (an IANA name such as
`Europe/London`), and the confirmation always states the zone.

The examples below are as they resolve on Friday 4 December 2026 at 10:00 in Europe/London (a test checks each
row). The expression is what EventBridge Scheduler is given, with the zone as its `ScheduleExpressionTimezone`.

One-time (`at(...)` is local wall time in the zone):

| You write | Expression | Confirmed as |
|---|---|---|
| `in 20 minutes` | `at(2026-12-04T10:20:00)` | Fri 4 Dec 2026 10:20 Europe/London |
| `in half an hour` | `at(2026-12-04T10:30:00)` | Fri 4 Dec 2026 10:30 Europe/London |
| `at 17:00` | `at(2026-12-04T17:00:00)` | Fri 4 Dec 2026 17:00 Europe/London |
| `tonight` | `at(2026-12-04T21:00:00)` | Fri 4 Dec 2026 21:00 Europe/London |
| `tomorrow evening` | `at(2026-12-05T19:00:00)` | Sat 5 Dec 2026 19:00 Europe/London |
| `tomorrow at 9` | `at(2026-12-05T09:00:00)` | Sat 5 Dec 2026 09:00 Europe/London |
| `the day after tomorrow at 8am` | `at(2026-12-06T08:00:00)` | Sun 6 Dec 2026 08:00 Europe/London |
| `next Friday 9:30` | `at(2026-12-11T09:30:00)` | Fri 11 Dec 2026 09:30 Europe/London |
| `Monday at 10am` | `at(2026-12-07T10:00:00)` | Mon 7 Dec 2026 10:00 Europe/London |
| `15th March at 2pm` | `at(2027-03-15T14:00:00)` | Mon 15 Mar 2027 14:00 Europe/London |
| `on 2027-01-05 at 10:00` | `at(2027-01-05T10:00:00)` | Tue 5 Jan 2027 10:00 Europe/London |

Recurring (`cron(minutes hours day-of-month month day-of-week year)` in the zone, or `rate(...)`; a cron's
confirmation ends with the zone in brackets, "every day at 08:00 (Europe/London)"):

| You write | Expression | Confirmed as |
|---|---|---|
| `every day at 8am` | `cron(0 8 * * ? *)` | every day at 08:00 |
| `daily at 7:15` | `cron(15 7 * * ? *)` | every day at 07:15 |
| `every weekday at 9` | `cron(0 9 ? * MON,TUE,WED,THU,FRI *)` | every weekday at 09:00 |
| `every Monday and Thursday at 18:00` | `cron(0 18 ? * MON,THU *)` | every Monday and Thursday at 18:00 |
| `every Sunday morning` | `cron(0 9 ? * SUN *)` | every Sunday at 09:00 |
| `on the 1st of every month at noon` | `cron(0 12 1 * ? *)` | on day 1 of every month at 12:00 |
| `every first Monday of the month at 9am` | `cron(0 9 ? * 2#1 *)` | on the first Monday of every month at 09:00 |
| `every year on March 5 at 9am` | `cron(0 9 5 3 ? *)` | every year on 5 March at 09:00 |
| `every 30 minutes` | `rate(30 minutes)` | every 30 minutes |
| `every 2 hours` | `rate(2 hours)` | every 2 hours |
| `hourly` | `rate(1 hour)` | every hour |

Words for times of day: morning 09:00, afternoon 15:00, evening 19:00, night and tonight 21:00, noon and midday
12:00, midnight 00:00. With an explicit hour they only pick am or pm ("tomorrow evening at 7" is 19:00).

Hours: `5pm`, `5 pm`, `5:30am` and 24-hour `17:00`, `07:15` are exact (a time with a colon and no am/pm is on the
24-hour clock). A bare hour after "at" is read as 8 to 11 in the morning, 12 noon, 13 to 23 and 0 as on the 24-hour
clock; a bare 1 to 7 is ambiguous ("at 5": write 5am, 5pm or 17:00) unless a word for the time of day says which.

Dates: "the 1st" alone is this month's (refused as past once it has gone: name the month); numeric dates are read
day first (25/12/2026) unless only month first makes sense (12/25/2026); when both could be either (5/1/2027) the
prompt is refused: write 2027-01-05 or 5 January. "Next Friday" and "Friday" are the coming Friday (never today).
"Every morning / evening / night" is every day at that hour.

Refused, with a message that says what to write instead:
- a time in the past ("yesterday at 5pm"; "at 9am" when it is already 10:00: "say tomorrow at 09:00"), and a day,
  week, month or year wholly in the past, with or without a time ("yesterday", "last Monday", "last month");
- a day without a time ("tomorrow", "on Friday": say at what time; the example adds 9am to your words only when
  that is still to come, else it is "tomorrow at 9am"), a month or a year without a day ("next month",
  "February at 3pm");
- anything the parsers do not understand ("whenever you like", "blue", "February 30"), and any reading that does
  not account for every number, weekday and month written (the parsers are lenient with word salad: "evening fri 5"
  or "every hour at :15" are refused rather than guessed at); fractions ("every 1.5 hours": say 90 minutes);
- recurring more often than the minimum interval (15 minutes by default: "every 5 minutes" is refused), every N
  days or weeks at a time of day (Scheduler's cron cannot count days across months: name the weekdays instead),
  two times in one schedule ("every day at 9 and 17": make two schedules), an end date ("until Friday");
- an unknown time zone.

Daylight saving time, as EventBridge Scheduler does it (and `When.next_after` computes it):
- a recurring time of day (cron) keeps its local wall time across the change: "every day at 8am" in Europe/London
  is 08:00 GMT in winter and 08:00 BST in summer;
- a day of the month that some months lack ("on the 31st of every month") fires only in the months that have it;
- a cron time that does not exist on the day clocks go forward (01:30 in London on the last Sunday of March) is
  skipped that day; one that happens twice when clocks go back runs once, the first time;
- `rate(...)` counts absolute time: "every 2 hours" is every 7,200 seconds whatever the clocks do; it starts at the
  first interval after it was created;
- a one-time wall time that does not exist (in the gap when clocks go forward) is refused ("pick another time");
  one that happens twice (when clocks go back) means the first of the two;
- "in 20 minutes" is 20 minutes of real time even across a change.
"""

from __future__ import annotations

import calendar
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from croniter import CroniterError, croniter
from dateparser.date import DateDataParser
from recurrent.event_parser import RecurringEvent

from openbrain.domain.scheduling import ScheduleError

# Default hours of the vague words (docs/scheduling.md, "Time prompts").
PARTS_OF_DAY = {"morning": 9, "afternoon": 15, "evening": 19, "night": 21}
_PM_PARTS = {"afternoon", "evening", "night"}
# A bare hour (no am/pm, no minutes) from this hour to 12 is taken as written (8 to 11 in the morning, 12 noon);
# below it (1 to 7) it is ambiguous.
_BARE_HOUR_MORNING = 8

# RFC 5545's day codes (recurrent's), in Python's weekday() order: Scheduler's name, Scheduler's number (1-7 from
# Sunday), the word. Written out rather than taken from `calendar`, whose names follow the process's locale.
_DAYS = {
    "MO": ("MON", 2, "Monday"),
    "TU": ("TUE", 3, "Tuesday"),
    "WE": ("WED", 4, "Wednesday"),
    "TH": ("THU", 5, "Thursday"),
    "FR": ("FRI", 6, "Friday"),
    "SA": ("SAT", 7, "Saturday"),
    "SU": ("SUN", 1, "Sunday"),
}
_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
_WEEKDAY_WORDS = {w: i for i, (_, _, word) in enumerate(_DAYS.values()) for w in (word.lower(), word[:3].lower())}
_MONTH_WORDS = {w: i for i, month in enumerate(_MONTHS, 1) for w in (month.lower(), month[:3].lower())}
_ORDINALS = {1: "first", 2: "second", 3: "third", 4: "fourth", 5: "fifth"}
_WEEKDAYS = "MON,TUE,WED,THU,FRI"

_AT = re.compile(r"^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$")
_CRON = re.compile(r"^cron\(([^()]+)\)$")
_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_RATE_UNITS = {"minute": 60, "hour": 3600, "day": 86400}

_RECURRING_WORD = re.compile(
    r"\b(every|each|daily|hourly|weekly|monthly|yearly|annually|weekdays|"
    r"mondays|tuesdays|wednesdays|thursdays|fridays|saturdays|sundays)\b"
)
_CLOCK = re.compile(r"\b\d{2}:\d{2}\b")  # a time after _canonical: always HH:MM, 24-hour


@dataclass(frozen=True)
class When:
    expression: str  # EventBridge Scheduler: "at(2026-12-05T19:00:00)" (local wall time in `timezone`),
    # "cron(0 8 * * ? *)", "rate(2 hours)"
    timezone: str  # IANA name
    first: datetime  # aware UTC: the first time it fires
    recurring: bool
    description: str  # for people: "Sat 5 Dec 2026 19:00 Europe/London" / "every day at 08:00 (Europe/London)"

    def next_after(self, after: datetime) -> datetime | None:
        """The first fire time strictly after `after` (aware UTC), None for a one-time When past its time.
        Agrees with how EventBridge Scheduler runs `expression` in `timezone`, DST included (module docstring)."""
        after = _aware_utc(after)
        zone = _zone(self.timezone)
        if match := _AT.match(self.expression):
            fire = _from_wall(datetime.fromisoformat(match.group(1)), zone)
            return fire if fire > after else None
        if match := _RATE.match(self.expression):
            step = timedelta(seconds=int(match.group(1)) * _RATE_UNITS[match.group(2).rstrip("s")])
            if after < self.first:
                return self.first
            return self.first + step * ((after - self.first) // step + 1)
        return _cron_next(_croniter_fields(self.expression), zone, after)


def when_from_expression(expression: str, timezone: str, *, first: datetime, description: str) -> When:
    """Rebuild a When from what was stored (the session stores expression, timezone, next_at, description)."""
    _zone(timezone)
    if _AT.match(expression):
        recurring = False
    elif _RATE.match(expression):
        recurring = True
    else:
        _croniter_fields(expression)
        recurring = True
    return When(expression, timezone, _aware_utc(first), recurring, description)


def parse_time_prompt(text: str, *, now: datetime, timezone: str, min_interval: timedelta) -> When:
    """Raises ScheduleError: unparseable, in the past, ambiguous (say what to write instead), a recurring
    interval under min_interval, an unknown time zone."""
    zone = _zone(timezone)
    now = _aware_utc(now).replace(microsecond=0)
    readings, ambiguous = _canonical(text)
    if _RECURRING_WORD.search(readings[0]):
        if ambiguous is not None:
            raise _ambiguous_hour(text, ambiguous)
        return _recurring(readings[0], text, now, timezone, zone, min_interval)
    if ambiguous is None:
        return _one_time(readings[0], text, now, timezone, zone)
    # "at 5": ambiguous, unless both readings have passed (then "in the past" is the clearer answer).
    errors = []
    for reading in readings:
        try:
            _one_time(reading, text, now, timezone, zone)
        except _PastError as exc:
            errors.append(exc)
            continue
        raise _ambiguous_hour(text, ambiguous)
    raise errors[-1]


class _PastError(ScheduleError):
    """A one-time prompt that resolves to a time at or before now."""


# ---------------------------------------------------------------------------------------------------- glue


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ValueError, KeyError, OSError) as exc:  # ZoneInfoNotFoundError is a KeyError; odd paths a ValueError
        raise ScheduleError(f'"{name}" is not a known time zone: use an IANA name such as Europe/London.') from exc


def _aware_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("scheduling needs an aware datetime")
    return moment.astimezone(UTC)


def _hhmm(hour: int, minute: int) -> str:
    return f"{hour:02d}:{minute:02d}"


def _ambiguous_hour(text: str, hour: int) -> ScheduleError:
    return ScheduleError(f'"{text}" is ambiguous: say {hour}am, {hour}pm or {hour + 12:02d}:00 (or morning / evening).')


def _canonical(text: str) -> tuple[list[str], int | None]:
    """Rewrite what the parsers do not know into what they do: every time of day becomes 24-hour HH:MM, vague
    words become their default hours. Returns one reading, or two (am and pm) and the hour for an ambiguous bare
    hour."""
    s = " ".join(text.lower().split()).strip(" .!")
    if not s:
        raise ScheduleError('No time prompt: say when, e.g. "tomorrow at 9am" or "every day at 8am".')
    if re.search(r"\d[.,]\d", s):
        raise ScheduleError(f'"{text}": write times as 9:30 and durations in whole units ("90 minutes").')
    s = re.sub(r"\bhourly\b", "every hour", s)
    s = re.sub(r"\b(every|each) (morning|afternoon|evening|night)\b", r"\1 day \2", s)
    s = re.sub(r"\b(in )?(half an hour|half hour)\b", lambda m: f"{m.group(1) or ''}30 minutes", s)
    s = re.sub(r"\b(in )?(a )?quarter (of an )?hour\b", lambda m: f"{m.group(1) or ''}15 minutes", s)
    s = re.sub(r"\b(noon|midday)\b", "12:00", s)
    s = re.sub(r"\bmidnight\b", "00:00", s)

    def am_pm(match: re.Match[str]) -> str:
        hour, minute = int(match.group(1)), int(match.group(2) or 0)
        if not 1 <= hour <= 12 or minute > 59:
            raise ScheduleError(f'"{match.group(0)}" is not a time of day.')
        return _hhmm(hour % 12 + (12 if match.group(3) == "p" else 0), minute)

    s = re.sub(r"\b(\d{1,2})(?::(\d{2}))?\s*([ap])\.?m\b\.?", am_pm, s)

    def clock(match: re.Match[str]) -> str:
        hour, minute = int(match.group(1)), int(match.group(2))
        if hour > 23 or minute > 59:
            raise ScheduleError(f'"{match.group(0)}" is not a time of day: use 00:00 to 23:59.')
        return _hhmm(hour, minute)

    s = re.sub(r"(?<![\d:-])(\d{1,2}):(\d{2})(?![\d:])", clock, s)

    part_match = re.search(r"\b(tonight|morning|afternoon|evening|night)\b", s)
    part = None if part_match is None else ("night" if part_match.group(1) == "tonight" else part_match.group(1))
    readings, ambiguous = [s], None
    bare = re.search(r"\bat (\d{1,2})\b(?![:\d])", s)
    if bare:
        hour = int(bare.group(1))
        if hour > 23:
            raise ScheduleError(f'"at {hour}" is not a time of day: use 00:00 to 23:59.')
        if part is not None and 1 <= hour <= 12:
            hours = [hour % 12 + (12 if part in _PM_PARTS else 0)]
        elif hour == 0 or hour >= _BARE_HOUR_MORNING:
            hours = [hour]
        else:
            hours, ambiguous = [hour, hour + 12], hour
        readings = [s[: bare.start()] + "at " + _hhmm(h, 0) + s[bare.end() :] for h in hours]

    def vague(reading: str) -> str:
        if _CLOCK.search(reading):  # an explicit time wins; the word only chose am or pm
            reading = re.sub(r"\b(tonight|this (morning|afternoon|evening))\b", "today", reading)
            reading = re.sub(r"\b(in the |at |on )?(morning|afternoon|evening|night)\b", "", reading)
        else:
            reading = re.sub(r"\btonight\b", f"today at {_hhmm(PARTS_OF_DAY['night'], 0)}", reading)
            reading = re.sub(
                r"\bthis (morning|afternoon|evening)\b",
                lambda m: f"today at {_hhmm(PARTS_OF_DAY[m.group(1)], 0)}",
                reading,
            )
            reading = re.sub(
                r"\b(in the |at |on )?(morning|afternoon|evening|night)\b",
                lambda m: f"at {_hhmm(PARTS_OF_DAY[m.group(2)], 0)}",
                reading,
            )
        return " ".join(reading.split())

    return [vague(reading) for reading in readings], ambiguous


def _from_wall(wall: datetime, zone: ZoneInfo) -> datetime:
    """A local wall time as aware UTC; the first of two when clocks go back (fold=0)."""
    return wall.replace(tzinfo=zone, fold=0).astimezone(UTC)


def _describe_moment(moment: datetime, timezone: str, zone: ZoneInfo) -> str:
    local = moment.astimezone(zone)
    return f"{local:%a} {local.day} {local:%b %Y %H:%M} {timezone}"


def _one_time(canonical: str, text: str, now: datetime, timezone: str, zone: ZoneInfo) -> When:
    base = now.astimezone(zone).replace(tzinfo=None)
    time_only = re.fullmatch(r"(today )?(at )?(\d{2}):(\d{2})( today)?", canonical)
    relative = (
        bool(re.match(r"in\b", canonical) or re.search(r"\bfrom now$", canonical))
        and bool(re.search(r"(?<![a-z])(second|sec|minute|min|hour|hr|h|day|week|month|year)s?\b", canonical))
        and not _CLOCK.search(canonical)
    )
    if time_only:
        wall = base.replace(hour=int(time_only.group(3)), minute=int(time_only.group(4)), second=0)
        period = "time"
    else:
        try:
            data = DateDataParser(
                languages=["en"],
                settings={
                    "RELATIVE_BASE": base,
                    "PREFER_DATES_FROM": "future",
                    "RETURN_TIME_AS_PERIOD": True,
                    "DATE_ORDER": "DMY",  # "the 1st" is a day, not January; 25/12 and 12/25 both work
                },
            ).get_date_data(canonical)
        except (ValueError, OverflowError, TypeError, AttributeError, IndexError) as exc:  # odd input trips it
            raise _not_understood(text) from exc
        if data.date_obj is None:
            raise _not_understood(text)
        wall, period = data.date_obj.replace(tzinfo=None, microsecond=0), data.period
        if not _accounts_for(canonical, wall, relative):
            raise _not_understood(text)
    if relative:
        first = now + (wall - base)
    elif period != "time" and _last_day(wall, period) < base.date():
        raise _PastError(f'"{text}" is in the past: say a time to come, e.g. "tomorrow at 9am".')
    elif period in {"month", "year"}:
        raise ScheduleError(f'"{text}" does not say which day: give a date and a time, e.g. "on 2027-01-05 at 10:00".')
    elif period != "time":
        raise _no_time(text, canonical, "tomorrow at 9am",
                       lambda example: _one_time(_canonical(example)[0][0], example, now, timezone, zone))
    else:
        first = _from_wall(wall, zone)
        if first.astimezone(zone).replace(tzinfo=None) != wall:
            raise ScheduleError(
                f"{wall:%H:%M} on {wall.day} {wall:%b %Y} does not exist in {timezone} (the clocks go forward): "
                "pick another time."
            )
    if first <= now:
        if time_only:
            raise _PastError(f'That time has passed today: say "tomorrow at {wall:%H:%M}".')
        raise _PastError(f'"{text}" is in the past ({_describe_moment(first, timezone, zone)}).')
    local = first.astimezone(zone).replace(tzinfo=None)
    return When(
        expression=f"at({local:%Y-%m-%dT%H:%M:%S})",
        timezone=timezone,
        first=first,
        recurring=False,
        description=_describe_moment(first, timezone, zone),
    )


def _last_day(wall: datetime, period: str) -> date:
    """The last day of the `period` ("day", "week", "month" or "year") dateparser read `wall` as."""
    if period == "week":
        return wall.date() + timedelta(days=6 - wall.weekday())
    if period == "month":
        return wall.date().replace(day=calendar.monthrange(wall.year, wall.month)[1])
    if period == "year":
        return wall.date().replace(month=12, day=31)
    return wall.date()


def _no_time(text: str, canonical: str, neutral: str, resolve: Callable[[str], When]) -> ScheduleError:
    """`text` says no time of day. The example adds one to the person's own words if they then `resolve` to a time
    to come, else it is `neutral`: never advice that is refused in turn ("today at 9am" after 9, "in monday at 9am")."""
    example = f"{text} at 9am"
    if _CLOCK.search(canonical):  # a time the parsers could not use: adding one would not help (and ends the recursion)
        example = neutral
    else:
        try:
            resolve(example)
        except ScheduleError:
            example = neutral
    return ScheduleError(f'"{text}" does not say at what time: e.g. "{example}".')


_TOKEN = re.compile(r"\d{4}-\d{2}-\d{2}|\d{1,2}/\d{1,2}(?:/\d{2,4})?|\d{2}:\d{2}|\d+")
_DURATION = re.compile(r"\d+ ?(second|sec|minute|min|hour|hr|h|day|week|month|year)s?\b")


def _named(canonical: str, words: dict[str, int]) -> set[int]:
    return {words[word] for word in re.findall(r"[a-z]+", canonical) if word in words}


def _accounts_for(canonical: str, wall: datetime, relative: bool) -> bool:
    """Whether the parsed moment agrees with every number, weekday and month the prompt names. dateparser reads
    word salad leniently ("evening fri 5" as 4 May); a result that ignores part of what was written is refused."""
    durations = {m.start() for m in _DURATION.finditer(canonical)}
    day_given = False  # a month named without a day ("feb at 15:00") would silently take today's day number
    for token in _TOKEN.finditer(canonical):
        value = token.group(0)
        if token.start() in durations:
            continue
        day_given = day_given or "-" in value or "/" in value or (value.isdigit() and int(value) == wall.day)
        if "-" in value:
            ok = value == f"{wall:%Y-%m-%d}"
        elif "/" in value:
            first, second, *year = (int(part) for part in value.split("/"))
            if first != second and first <= 12 and second <= 12:
                y = wall.year if not year else year[0] + (2000 if year[0] < 100 else 0)
                raise ScheduleError(
                    f'"{value}" could be day or month first: write {y}-{second:02d}-{first:02d} '
                    f"or {y}-{first:02d}-{second:02d}."
                )
            ok = {first, second} == {wall.day, wall.month} and year in ([], [wall.year], [wall.year % 100])
        elif ":" in value:
            ok = relative or value == f"{wall:%H:%M}"
        else:
            ok = relative or int(value) in {wall.day, wall.year}
        if not ok:
            return False
    weekdays, months = _named(canonical, _WEEKDAY_WORDS), _named(canonical, _MONTH_WORDS)
    if months and not day_given:
        return False
    return (not weekdays or weekdays == {wall.weekday()}) and (not months or months == {wall.month})


def _not_understood(text: str) -> ScheduleError:
    return ScheduleError(
        f'"{text}" is not a time I understand: try "in 20 minutes", "tomorrow at 9am", "next Friday 9:30" '
        'or "every day at 8am".'
    )


def _recurring(
    canonical: str, text: str, now: datetime, timezone: str, zone: ZoneInfo, min_interval: timedelta
) -> When:
    if len(_CLOCK.findall(canonical)) > 1:
        raise ScheduleError(f'"{text}" names more than one time of day: make one schedule per time.')
    canonical = re.sub(r"(?<!\bat )\b(\d{2}:\d{2})\b", r"at \1", canonical)  # recurrent reads a time after "at"
    try:
        with warnings.catch_warnings():  # recurrent builds parsedatetime's Calendar the way it deprecates
            warnings.simplefilter("ignore", PendingDeprecationWarning)
            # (0, 12): a bare hour is on the 24-hour clock (_canonical has already written every hour as HH:MM)
            event = RecurringEvent(now_date=now.astimezone(zone).replace(tzinfo=None), preferred_time_range=(0, 12))
            rule = event.parse(canonical)
    except (ValueError, OverflowError, TypeError, AttributeError, IndexError) as exc:
        raise _not_understood(text) from exc
    if not isinstance(rule, str):
        raise _not_understood(text)
    params: dict[str, Any] = event.get_params()
    unsupported = set(params) - {"freq", "interval", "byday", "byhour", "byminute", "bymonthday", "bymonth"}
    if unsupported:
        raise ScheduleError(f'"{text}" is more than a schedule can say (no end dates or exceptions): keep it simple.')
    if not _rule_accounts_for(canonical, params):
        raise _not_understood(text)
    freq, interval = params["freq"], int(params.get("interval", 1))
    if freq in {"minutely", "hourly"}:
        if set(params) - {"freq", "interval"}:
            raise ScheduleError(f'"{text}": say either an interval ("every 2 hours") or days and a time.')
        unit = "minute" if freq == "minutely" else "hour"
        step = timedelta(seconds=interval * _RATE_UNITS[unit])
        if step < min_interval:
            raise ScheduleError(f'"{text}" is too often: at most every {_duration(min_interval)}.')
        expression = f"rate({interval} {unit}{'' if interval == 1 else 's'})"
        description = f"every {unit}" if interval == 1 else f"every {interval} {unit}s"
        return When(expression, timezone, now + step, True, description)
    if interval != 1:
        raise ScheduleError(
            f'"{text}": a schedule cannot repeat every {interval} days, weeks or months at a time of day; '
            'name the weekdays instead ("every Monday and Thursday at 9am").'
        )
    if "byhour" not in params:
        raise _no_time(text, canonical, "every day at 9am", lambda example: parse_time_prompt(
            example, now=now, timezone=timezone, min_interval=min_interval))
    hour, minute = int(params["byhour"]), int(params.get("byminute", 0))
    at = _hhmm(hour, minute)
    dom, month, dow = "*", "*", "?"
    days = [day for day in params.get("byday", "").split(",") if day]
    if freq == "daily" and not days:
        description = f"every day at {at}"
    elif freq in {"daily", "weekly"}:
        if not days or any(day not in _DAYS for day in days):
            raise ScheduleError(f'"{text}" does not say which day of the week: e.g. "every Monday at 9am".')
        dom, dow = "?", ",".join(_DAYS[day][0] for day in days)
        if dow == _WEEKDAYS:
            description = f"every weekday at {at}"
        else:
            names = [_DAYS[day][2] for day in days]
            listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
            description = f"every {listed} at {at}"
    elif freq == "monthly" and "bymonthday" in params:
        dom = params["bymonthday"]
        if any(not 1 <= int(day) <= 31 for day in dom.split(",")):
            raise ScheduleError(f'"{text}": name a day of the month from 1 to 31.')
        description = f"on day {dom.replace(',', ' and ')} of every month at {at}"
    elif freq == "monthly" and (ordinal := re.fullmatch(r"([1-5])(MO|TU|WE|TH|FR|SA|SU)", params.get("byday", ""))):
        # numbered, as Scheduler's docs write "#" (days of the week 1-7 = SUN-SAT)
        _, number, day_word = _DAYS[ordinal.group(2)]
        dom, dow = "?", f"{number}#{ordinal.group(1)}"
        description = f"on the {_ORDINALS[int(ordinal.group(1))]} {day_word} of every month at {at}"
    elif freq == "yearly" and "bymonthday" in params and "bymonth" in params and "," not in params["bymonth"]:
        dom, month = params["bymonthday"], params["bymonth"]
        description = f"every year on {dom} {_MONTHS[int(month) - 1]} at {at}"
    else:
        raise ScheduleError(f'"{text}" does not say which day: e.g. "on the 1st of every month at 9am".')
    expression = f"cron({minute} {hour} {dom} {month} {dow} *)"
    fields = _croniter_fields(expression)
    first = _cron_next(fields, zone, now)
    second = _cron_next(fields, zone, first)
    if second - first < min_interval:  # a caller's minimum above a day refuses a daily schedule
        raise ScheduleError(f'"{text}" is too often: at most every {_duration(min_interval)}.')
    return When(expression, timezone, first, True, f"{description} ({timezone})")


def _rule_accounts_for(canonical: str, params: dict[str, Any]) -> bool:
    """Whether recurrent's rule keeps every number, weekday and month the prompt names (it drops what it does not
    understand: "every hour at :15" would otherwise be every hour, "9am daily each monday" every day)."""
    numbers = {int(params.get("interval", 1))}
    numbers |= {int(day) for day in str(params.get("bymonthday", "")).split(",") if day}
    numbers |= {int(n) for n in re.findall(r"-?\d+", str(params.get("byday", "")))}
    clock = f"{int(params['byhour']):02d}:{int(params.get('byminute', 0)):02d}" if "byhour" in params else None
    for token in _TOKEN.finditer(canonical):
        value = token.group(0)
        if not (value == clock or (value.isdigit() and int(value) in numbers)):
            return False
    days = {list(_DAYS).index(code[-2:]) for code in str(params.get("byday", "")).split(",") if code}
    months = {int(month) for month in str(params.get("bymonth", "")).split(",") if month}
    named_days, named_months = _named(canonical, _WEEKDAY_WORDS), _named(canonical, _MONTH_WORDS)
    return (not named_days or named_days == days) and (not named_months or named_months == months)


def _duration(span: timedelta) -> str:
    minutes = int(span.total_seconds() // 60)
    if minutes % 60 == 0 and minutes >= 60:
        return f"{minutes // 60} hour{'s' if minutes != 60 else ''}"
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def _croniter_fields(expression: str) -> str:
    """Scheduler's 6-field cron (min hour day-of-month month day-of-week year; `?` in one day field; days of the
    week 1-7 = SUN-SAT) as croniter's 5 fields. Only the year `*` is supported (this module writes no other)."""
    match = _CRON.match(expression)
    if not match:
        raise ScheduleError(f'"{expression}" is not a Scheduler expression (at(...), cron(...) or rate(...)).')
    fields = match.group(1).split()
    if len(fields) != 6 or fields[5] != "*" or "?" not in (fields[2], fields[4]):
        raise ScheduleError(f'"{expression}" is not a cron expression this service writes.')
    minute, hour, dom, month, dow, _year = fields
    # Scheduler numbers days of the week 1-7 from Sunday, croniter 0-6 (the number after "#" is a count: kept)
    dow = re.sub(r"(?<![#\d])([1-7])(?!\d)", lambda m: str(int(m.group(1)) - 1), dow)
    five = " ".join(field.replace("?", "*") for field in (minute, hour, dom, month, dow))
    if not croniter.is_valid(five):
        raise ScheduleError(f'"{expression}" is not a valid cron expression.')
    return five


def _cron_next(fields: str, zone: ZoneInfo, after: datetime) -> datetime:
    """The next fire strictly after `after`, as Scheduler runs a cron in a zone: croniter walks local wall time;
    a time that does not exist that day (croniter moves it to the end of the gap) is skipped, and a time that
    happens twice runs only the first time (croniter would run both)."""
    start = after.astimezone(zone)
    walker = croniter(fields, start)
    for _ in range(1000):
        try:
            candidate: datetime = walker.get_next(datetime)
        except CroniterError as exc:  # a day that never comes ("every year on 30 February")
            raise ScheduleError("That day never comes: pick one that does.") from exc
        local = candidate.astimezone(zone)
        wall = local.replace(tzinfo=None)
        in_gap = not croniter.match(fields, wall)
        repeated = local.replace(fold=0).utcoffset() != local.utcoffset()
        if not in_gap and not repeated:
            fire = candidate.astimezone(UTC)
            if fire > after:
                return fire
    raise ScheduleError("That day never comes: pick one that does.")  # pragma: no cover (croniter raises first)


__all__ = ["PARTS_OF_DAY", "When", "parse_time_prompt", "when_from_expression"]
