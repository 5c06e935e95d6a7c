"""The delivery of scheduled messages on AWS: the function EventBridge Scheduler invokes at each due time.

Scheduler invokes it asynchronously with the schedule's `Input` as the event (openbrain/aws/scheduler.py):

    {"client_id": "acme", "session_id": "01K...", "schedule_id": "01K...", "scheduled_time": "2026-12-05T19:00:00Z"}

`handler` parses it and hands the target and its due time to `openbrain.services.schedules.deliver`, which
delivers the message (stores it, pushes it to the session's open connections, emits `message.delivered.v1`;
docs/scheduling.md).

- A malformed event (not a schedule's Input: invoked by hand, or armed by something else) is logged at WARNING,
  naming the fields that are wrong, and dropped: retrying cannot repair it, so raising would only make Lambda try
  it twice more before dead-lettering the same bytes.
- An error of the delivery propagates: Lambda retries the invocation (template.yaml `EventInvokeConfig`), then
  sends the event to the schedules' dead-letter queue, where it can be read and replayed.
"""

from __future__ import annotations

import logging
from typing import Any

from openbrain.aws.backend import get_backend
from openbrain.aws.scheduler import MalformedScheduleEventError, parse_schedule_event

log = logging.getLogger(__name__)


def handler(event: Any, context: Any) -> dict[str, str]:
    """A schedule's event in; what became of it out (Scheduler ignores the answer; ob-serve and tests read it)."""
    try:
        target, scheduled_time = parse_schedule_event(event)
    except MalformedScheduleEventError as exc:
        log.warning("scheduled delivery: dropped a malformed event (not retried): %s", exc.message)
        return {"status": "malformed", "reason": exc.message}
    # it runs a chat turn for a `chatbot` message: imported only when there is one to deliver
    from openbrain.services.schedules import deliver

    due = scheduled_time.isoformat().replace("+00:00", "Z")
    log.info("scheduled delivery: client %s session %s schedule %s due %s", target.client_id, target.session_id,
             target.schedule_id, due)
    try:
        deliver(get_backend(), target, scheduled_time)
    except Exception as exc:
        log.error("scheduled delivery: client %s session %s schedule %s due %s failed (%s); Lambda retries it",
                  target.client_id, target.session_id, target.schedule_id, due, type(exc).__name__)
        raise
    return {"status": "handled", "schedule_id": target.schedule_id, "scheduled_time": due}
