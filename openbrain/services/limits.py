"""Hard rate limits and quotas for a public key (docs/api.md, Rate limits and quotas).

Every turn asked for with a widget key (`obw.`, public in a web page) is counted before it runs, against the
client's `RateLimits` (domain/limits.py, stored on the Client, so reading them costs nothing: the key's check
already read the Client):

- per end user (`end_user`: the verified user id once identity exists, until then the caller's IP as API
  Gateway reports it): turns per minute, and per 10 seconds (the burst);
- per client: turns per minute; turns and tokens per UTC day and per UTC calendar month;
- per session (a turn of an existing session): turns in flight.

Fixed windows, not a token bucket: a window's counter only ever grows by an atomic ADD whose condition is the
limit, so admitting a turn is one write per counter, with no read and no read-modify-write race; a token
bucket needs the last refill time and level read back (a second call, or a retried conditional write under
contention). Fixed windows let through up to twice a limit across a window boundary; the burst window (5 in
any 10 seconds by default) bounds that spike for an end user.

`admit` adds 1 to every counter in ONE TransactWriteItems, all or nothing: over any limit, no counter
changes, `RateLimitedError` says for how long (`retry_after`: when the window that refused ends), and the
turn runs nothing and stores nothing. Settling the turn (`Admission.counts`: its tokens, `usage` of
`turn.finished`, to the day and month; its slot of the session freed) costs no call of its own: it rides the
turn's commit, the same TransactWriteItems as the session (services/usage.py, `TurnLedger`). So a widget-key
turn makes ONE DynamoDB call more than a server-key turn: the admission. Only a turn that never commits (it
failed, or its caller went away) settles in a write of its own. A token quota is checked before a turn: the
turn that crosses it finishes, the next is refused.

A session's slot is counted in a 60-second lease window, so a slot whose process died (a Lambda that timed
out) frees itself when that window ends.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from openbrain.core.clock import utcnow
from openbrain.core.errors import RateLimitedError
from openbrain.domain.limits import BURST_SECONDS
from openbrain.storage.stores import Count

if TYPE_CHECKING:
    from openbrain.storage.orm import Client
    from openbrain.storage.stores import CounterStore

LEASE_SECONDS = 60  # a session's turns in flight are counted per this window
KEEP_SECONDS = 3600  # a counter outlives its window by this much before DynamoDB's TTL may delete it
ANONYMOUS = "-"  # the end user of a request that names none
MAX_END_USER_CHARS = 256


@dataclass(frozen=True)
class _Limit:
    count: Count
    resets: int  # epoch seconds when the window ends
    what: str


@dataclass
class Admission:
    """An admitted turn: what settling it adds to or takes back from the counters once it ends."""

    quotas: list[Count] = field(default_factory=list)  # the day and month counters (tokens go there)
    session: Count | None = None  # the session's slot, to free

    def counts(self, usage: Mapping[str, int] | None) -> list[Count]:
        """What settles the turn: its tokens (`usage` of `turn.finished`; None: it did not finish) added to the
        quotas, its session's slot freed. Written by the turn's commit, or by one write of its own if it never
        commits (services/usage.py, `TurnLedger`)."""
        tokens = int((usage or {}).get("total_tokens", 0) or 0)
        counts = [Count(quota.key, {"tokens": tokens}, quota.expires_at) for quota in self.quotas] if tokens else []
        if self.session is not None:
            counts.append(Count(self.session.key, {"inflight": -1}, self.session.expires_at))
        return counts


def _window(now: int, seconds: int) -> int:
    return now - now % seconds


def _limits(client: Client, end_user: str | None, session_id: str | None, now: datetime) -> list[_Limit]:
    limits = client.rate_limits
    cid = client.client_id
    user = (end_user or ANONYMOUS)[:MAX_END_USER_CHARS]
    epoch = int(now.timestamp())
    minute, burst, lease = _window(epoch, 60), _window(epoch, BURST_SECONDS), _window(epoch, LEASE_SECONDS)
    day = datetime(now.year, now.month, now.day, tzinfo=UTC)
    month = datetime(now.year, now.month, 1, tzinfo=UTC)
    next_day = int((day + timedelta(days=1)).timestamp())
    next_month = int(datetime(now.year + now.month // 12, now.month % 12 + 1, 1, tzinfo=UTC).timestamp())

    def limit(key: str, resets: int, below: dict[str, int], what: str, add: str = "turns") -> _Limit:
        return _Limit(Count(f"{cid}#{key}", {add: 1}, resets + KEEP_SECONDS, below), resets, what)

    found = [
        limit(f"user#{user}#b#{burst}", burst + BURST_SECONDS, {"turns": limits.user_burst},
              f"{limits.user_burst} turns per {BURST_SECONDS} seconds per user"),
        limit(f"user#{user}#m#{minute}", minute + 60, {"turns": limits.user_per_minute},
              f"{limits.user_per_minute} turns per minute per user"),
        limit(f"m#{minute}", minute + 60, {"turns": limits.client_per_minute},
              f"{limits.client_per_minute} turns per minute for the client"),
        limit(f"day#{day:%Y-%m-%d}", next_day, {"turns": limits.turns_per_day, "tokens": limits.tokens_per_day},
              f"the daily quota ({limits.turns_per_day} turns, {limits.tokens_per_day} tokens)"),
        limit(f"month#{month:%Y-%m}", next_month,
              {"turns": limits.turns_per_month, "tokens": limits.tokens_per_month},
              f"the monthly quota ({limits.turns_per_month} turns, {limits.tokens_per_month} tokens)"),
    ]
    if session_id:
        # Retry-After 1: the turn in flight usually ends within seconds (a dead one's lease window ends it).
        found.append(_Limit(Count(f"{cid}#session#{session_id}#{lease}", {"inflight": 1}, lease + LEASE_SECONDS,
                                  {"inflight": limits.session_concurrency}), epoch + 1,
                            f"{limits.session_concurrency} turn(s) at a time per session"))
    return found


def admit(client: Client, end_user: str | None, session_id: str | None, counters: CounterStore,
          now: datetime | None = None) -> Admission:
    """Count a turn of `client` for `end_user` (in `session_id`, if it continues one) against every limit, in
    one write; `RateLimitedError` (nothing counted) if it is over any (module docstring). The caller settles the
    admission (`Admission.counts`) when the turn ends."""
    now = now or utcnow()
    limits = _limits(client, end_user, session_id, now)
    _count(limits, counters, now)
    return Admission([found.count for found in limits[3:5]], limits[5].count if session_id else None)


def admit_quotas(client: Client, counters: CounterStore, now: datetime | None = None) -> Admission:
    """Count a turn of `client` that no caller asked for (a scheduled prompt to the chatbot: docs/scheduling.md)
    against its daily and monthly quotas only, in one write; `RateLimitedError` if it is over one. Settled as
    `admit`'s."""
    now = now or utcnow()
    quotas = _limits(client, None, None, now)[3:5]
    _count(quotas, counters, now)
    return Admission([found.count for found in quotas])


def _count(limits: list[_Limit], counters: CounterStore, now: datetime) -> None:
    closed = [i for i, found in enumerate(limits) if min(found.count.below.values()) <= 0]  # a limit of 0
    refused = closed or counters.count([found.count for found in limits])
    if refused:
        worst = max((limits[i] for i in refused), key=lambda found: found.resets)
        retry_after = max(1, worst.resets - int(now.timestamp()))
        raise RateLimitedError(f"rate limited: over {worst.what}; retry in {retry_after} s", retry_after)
