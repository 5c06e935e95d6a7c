"""RateCounter: one counter of a client's rate limits and quotas (services/limits.py).

Keys: hash `key`, a string naming what is counted and its window:

| key | counts |
| --- | --- |
| `<client_id>#user#<end user>#m#<minute>` and `...#b#<10-second window>` | an end user's turns |
| `<client_id>#m#<minute>` | the client's turns this minute |
| `<client_id>#day#<YYYY-MM-DD>`, `<client_id>#month#<YYYY-MM>` | the client's turns and tokens |
| `<client_id>#session#<session_id>#<lease window>` | turns of one session in flight |
| `<client_id>#usage#<YYYY-MM-DD>` | the client's usage that UTC day, every key's turns (services/usage.py) |
| `<client_id>#schedules` | the client's scheduled messages waiting (`active`: conversation/schedules.py) |

A usage row counts `turns`, `input_tokens`, `output_tokens`, `latency_ms` (the sum over its turns, so a mean),
`errors` and `rate_limited`; it is kept 400 days (`expires_at`), the limits' windows an hour past their end.

Windows are fixed (a minute starts at :00 UTC), so a counter is only ever added to: one conditional
UpdateItem per counter (in one transaction for a turn: the admission's, or the turn's commit) and never a read
on a turn's way (`GET /usage` reads the usage rows, BatchGetItem). `expires_at` (a TTL attribute) is
the end of the window plus a margin: DynamoDB deletes old windows itself. No version attribute: counters
change by atomic ADD, never by read-modify-write.
"""

from __future__ import annotations

from pynamodb.attributes import NumberAttribute, TTLAttribute, UnicodeAttribute
from pynamodb.models import Model


class RateCounter(Model):
    """The turns, tokens and turns in flight counted under one key (module docstring)."""

    class Meta:
        table_name = "openbrain-limits"
        region = "us-east-1"
        billing_mode = "PAY_PER_REQUEST"

    key = UnicodeAttribute(hash_key=True)
    turns = NumberAttribute(null=True)
    tokens = NumberAttribute(null=True)
    inflight = NumberAttribute(null=True)
    input_tokens = NumberAttribute(null=True)
    output_tokens = NumberAttribute(null=True)
    latency_ms = NumberAttribute(null=True)
    errors = NumberAttribute(null=True)
    rate_limited = NumberAttribute(null=True)
    active = NumberAttribute(null=True)
    expires_at = TTLAttribute(null=True)
