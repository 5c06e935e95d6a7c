"""What a tool sees of the turn it runs in, and the model never does."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from openbrain.core.errors import NotFoundError

if TYPE_CHECKING:
    from openbrain.conversation.schedules import ScheduleBook
    from openbrain.domain.events import Event
    from openbrain.storage.orm import Lead
    from openbrain.storage.stores import LeadStore


@dataclass
class ToolContext:
    """Passed to every tool call of a turn as the agent's runtime context.

    Tools never write or publish while the turn runs: they record what should happen, and the turn's commit
    does it (`conversation/chat.py`: the session and `lead` in one transaction, then `events` through the
    session's outbox), so a turn that fails or loses a race leaves no trace.

    `values` are the session's tool context (e.g. a page URL or a CRM campaign id a widget sends); `leads`
    reads the session's stored lead; tools set `lead` (the lead to write: new, or with the fields named in
    `lead_changes` changed), `lead_id` and `ended`, and append to `events`; the scheduling tools change
    `schedules`. `deadline` (a `time.monotonic()` value) is when the turn must stop.
    """

    client_id: str
    session_id: str
    leads: LeadStore | None = None
    values: dict[str, Any] = field(default_factory=dict)
    turn: int = 0
    lead_id: str | None = None
    lead: Lead | None = None
    lead_changes: set[str] = field(default_factory=set)
    ended: bool = False
    events: list[Event] = field(default_factory=list)
    tool_calls: list[str] = field(default_factory=list)
    deadline: float = math.inf
    budget: float = math.inf  # the seconds the turn was given (the stop reply names them)
    schedules: ScheduleBook | None = None  # the session's scheduled messages (conversation/schedules.py)

    def start_clock(self, seconds: float) -> None:
        """The turn starts now and may take `seconds` (or until the deadline it had, if sooner)."""
        now = time.monotonic()
        self.deadline = min(self.deadline, now + seconds)
        self.budget = round(self.deadline - now, 1)

    def emit(self, event: Event) -> None:
        """Have `event` published once the turn is committed."""
        self.events.append(event)

    def current_lead(self) -> Lead | None:
        """The session's lead as this turn left it: written by an earlier call of the turn, or as stored
        (None if there is none, or it vanished)."""
        if self.lead is not None or not self.lead_id or self.leads is None:
            return self.lead
        try:
            return self.leads.get(self.client_id, self.lead_id)
        except NotFoundError:
            return None
