"""What a tool sees of the turn it runs in, and the model never does."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from openbrain.aws.events import EventPublisher
    from openbrain.domain.events import Event


@dataclass
class ToolContext:
    """Passed to every tool call of a turn as the agent's runtime context.

    `values` are the session's tool context (e.g. a page URL or a CRM campaign id a widget sends);
    tools update `lead_id` and `ended`, and every event they publish is appended to `events`.
    `deadline` (a `time.monotonic()` value) is when the turn must stop calling the model.
    """

    client_id: str
    session_id: str
    publisher: EventPublisher
    values: dict[str, Any] = field(default_factory=dict)
    turn: int = 0
    lead_id: str | None = None
    ended: bool = False
    events: list[Event] = field(default_factory=list)
    tool_calls: list[str] = field(default_factory=list)
    deadline: float = math.inf

    def publish(self, event: Event) -> None:
        """Publish an event now (raises `UpstreamError` if EventBridge refuses it) and remember it."""
        self.publisher.publish([event])
        self.events.append(event)
