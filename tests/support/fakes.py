"""Stand-ins injected where a test needs an AWS client it can inspect."""

from __future__ import annotations

from typing import Any

from openbrain.core.ids import new_id


class RecordingEventsClient:
    """A stand-in EventBridge client (same `put_events` signature) that accepts and keeps what it is sent."""

    def __init__(self) -> None:
        self.calls: list[list[dict[str, Any]]] = []

    def put_events(self, *, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls.append(Entries)
        return {"FailedEntryCount": 0, "Entries": [{"EventId": new_id()} for _ in Entries]}
