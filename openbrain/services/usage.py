"""Usage: what every chat turn of a client's keys adds to its day's counters, and reading them back
(domain/usage.py says what each counts; docs/api.md, Usage).

A day's usage is one counter item of the limits table, `<client_id>#usage#<YYYY-MM-DD>` (storage/orm/rate_counter.py),
kept `KEEP_DAYS` (DynamoDB's TTL then deletes it). A turn that is stored adds its usage in its own commit, in the
same transaction as the session (`TurnLedger.committing`, conversation/chat.py): usage costs no DynamoDB call on
the happy path. A turn that fails after it started, and a refused one, add theirs in one write of their own.

`TurnLedger.observe` also hands each turn's `TurnUsage` to whoever asked (the Lambdas emit it as CloudWatch
metrics: api/observability.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from openbrain.core.clock import utcnow
from openbrain.core.errors import InvalidInputError, OpenBrainError
from openbrain.domain.usage import COUNTED, UsageCounts, UsageDay, UsageReport
from openbrain.storage.stores import Count

if TYPE_CHECKING:
    from openbrain.services.limits import Admission
    from openbrain.storage.stores import CounterStore

log = logging.getLogger(__name__)
KEEP_DAYS = 400  # a day's usage outlives a year, so a year can be compared with the one before
MAX_RANGE_DAYS = 366
DEFAULT_RANGE_DAYS = 30


def usage_key(client_id: str, day: date) -> str:
    return f"{client_id}#usage#{day:%Y-%m-%d}"


@dataclass(frozen=True)
class TurnUsage:
    """What one turn (or one refused request) adds to its client's usage."""

    client_id: str
    turns: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    latency_ms: int = 0
    errors: int = 0
    rate_limited: int = 0

    def count(self, now: datetime) -> Count:
        """The ADD to the usage row of `now`'s UTC day."""
        day = now.astimezone(UTC).date()
        expires = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=KEEP_DAYS)
        amounts = {name: getattr(self, name) for name in COUNTED}
        return Count(usage_key(self.client_id, day), {name: n for name, n in amounts.items() if n},
                     int(expires.timestamp()))


@dataclass
class TurnLedger:
    """One request's bookkeeping: its usage, and settling its rate-limit admission (services/limits.py), each
    written once: in the turn's commit (`committing`, then `committed`), or, if it never commits, in one write
    of their own (`failed`)."""

    client_id: str
    counters: CounterStore
    admission: Admission | None = None
    observe: Callable[[TurnUsage], None] | None = None
    started: float = field(default_factory=time.perf_counter)
    _pending: TurnUsage | None = field(default=None, init=False)  # what the commit carries, once asked
    _done: bool = field(default=False, init=False)  # written (by the commit or on its own)

    def _elapsed_ms(self) -> int:
        return round((time.perf_counter() - self.started) * 1000)

    def committing(self, usage: Mapping[str, int]) -> list[Count]:
        """What the commit of a turn that used `usage` (`turn.finished`'s) carries: its usage, its tokens
        to the quotas and its session's slot freed."""
        self._pending = TurnUsage(self.client_id, turns=1, input_tokens=int(usage.get("input_tokens", 0) or 0),
                                  output_tokens=int(usage.get("output_tokens", 0) or 0),
                                  latency_ms=self._elapsed_ms())
        return [self._pending.count(utcnow()), *(self.admission.counts(usage) if self.admission else [])]

    def committed(self) -> None:
        """The commit carrying `committing`'s counts was stored. Nothing if no commit asked for them (a `dps`
        command runs no turn and its commit carries none): `failed` then settles the admission, so the session's
        slot is freed at once rather than when its lease window ends."""
        if self._pending is None:
            return
        self._done = True
        if self._pending is not None and self.observe is not None:
            self.observe(self._pending)

    def failed(self, *, error: bool) -> None:
        """The request ends without a commit (`error`: its turn had started and failed): settle the admission and
        count the error, in one write. A failure to write is logged, not raised: the request is over (an unsettled
        session slot frees itself with its lease window; services/limits.py)."""
        if self._done:
            return
        self._done = True
        outcome = TurnUsage(self.client_id, errors=1) if error else None
        counts = self.admission.counts(None) if self.admission else []
        if outcome is not None:
            counts.append(outcome.count(utcnow()))
        self._write(counts, outcome)

    def refused(self) -> None:
        """The request was refused by a rate limit: count it."""
        self._done = True
        outcome = TurnUsage(self.client_id, rate_limited=1)
        self._write([outcome.count(utcnow())], outcome)

    def _write(self, counts: list[Count], outcome: TurnUsage | None) -> None:
        if counts:
            try:
                self.counters.count(counts)
            except OpenBrainError as exc:
                log.warning("could not count a request's usage", extra={"error_code": exc.code})
        if outcome is not None and self.observe is not None:
            self.observe(outcome)


def date_range(start: date | None, end: date | None, today: date | None = None) -> tuple[date, date]:
    """The days a usage query covers: `start` to `end`, both included (defaults: `end` today (UTC), `start` the
    `DEFAULT_RANGE_DAYS` days up to `end`); `InvalidInputError` for a range that ends before it starts or spans over
    `MAX_RANGE_DAYS` days."""
    end = end or today or utcnow().date()
    # (the first days of year 1 have no 30 days before them: date arithmetic would overflow)
    start = start or end - timedelta(days=min(DEFAULT_RANGE_DAYS - 1, (end - date.min).days))
    if end < start:
        raise InvalidInputError(f"from ({start}) is after to ({end})")
    if (end - start).days + 1 > MAX_RANGE_DAYS:
        raise InvalidInputError(f"the range spans {(end - start).days + 1} days; at most {MAX_RANGE_DAYS}")
    return start, end


def usage_report(counters: CounterStore, client_id: str, start: date, end: date) -> UsageReport:
    """`client_id`'s usage from `start` to `end` (see `date_range`), read in one BatchGetItem per 100 days."""
    days = [start + timedelta(days=n) for n in range((end - start).days + 1)]
    stored = counters.read([usage_key(client_id, day) for day in days])
    rows, totals = [], dict.fromkeys(COUNTED, 0)
    for day in days:
        counter = stored.get(usage_key(client_id, day))
        if counter is None:
            continue
        sums = {name: int(getattr(counter, name) or 0) for name in COUNTED}
        rows.append(UsageDay(day=day, **UsageCounts.of(sums).model_dump()))
        totals = {name: totals[name] + sums[name] for name in COUNTED}
    return UsageReport(client_id=client_id, from_=start, to=end, days=rows, totals=UsageCounts.of(totals))
