"""The one place that sends events to EventBridge (and checks `FailedEntryCount`)."""

from __future__ import annotations

import json
import logging
from typing import Any, Protocol

from openbrain.core.errors import UpstreamError
from openbrain.domain.events import EVENT_SOURCE, Event

log = logging.getLogger(__name__)
MAX_ENTRIES_PER_CALL = 10  # PutEvents' limit


class EventsClient(Protocol):
    def put_events(self, *, Entries: list[dict[str, Any]]) -> dict[str, Any]: ...


class EventPublisher:
    """Sends events to one EventBridge bus; raises `UpstreamError` unless every entry was accepted."""

    def __init__(self, client: EventsClient, bus_name: str) -> None:
        self._client = client
        self.bus_name = bus_name

    def entry(self, event: Event) -> dict[str, Any]:
        return {
            "Source": EVENT_SOURCE,
            "DetailType": event.detail_type,
            "Detail": json.dumps(event.detail(), separators=(",", ":")),
            "EventBusName": self.bus_name,
            "Time": event.occurred_at,
        }

    def publish(self, events: list[Event]) -> None:
        """Send `events` (in calls of at most 10). Raises `UpstreamError` if any was not accepted (the
        others may have been: publishing again is safe, targets act once per idempotency key)."""
        for start in range(0, len(events), MAX_ENTRIES_PER_CALL):
            self._put(events[start:start + MAX_ENTRIES_PER_CALL])

    def _put(self, events: list[Event]) -> None:
        try:
            response = self._client.put_events(Entries=[self.entry(event) for event in events])
        except Exception as exc:  # botocore's errors have no common base worth importing here
            log.error("put_events failed: %s", type(exc).__name__)
            raise UpstreamError("the event bus is unavailable") from exc
        failed = response.get("FailedEntryCount", 0)
        if failed:
            codes = sorted({e.get("ErrorCode", "?") for e in response.get("Entries", []) if e.get("ErrorCode")})
            log.error("put_events rejected %d of %d entries: %s", failed, len(events), ",".join(codes))
            raise UpstreamError(f"the event bus rejected {failed} of {len(events)} events")
