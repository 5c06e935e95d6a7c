"""The outbox: a chat turn's events are committed with its session, then published.

A turn's tools only record events (`ToolContext.emit`); the commit stores them in the session item's
`outbox` in the same write as the session (and its lead), so an event exists exactly when the turn that
caused it committed. After the commit the outbox is published (`FailedEntryCount` checked) and cleared.
What a crash or a failed publish leaves behind is published by the next committed turn of that session
(it carries the outbox over) or by `flush` (`ob-admin outbox flush`, and the scheduled sweep in
template.yaml). An event may therefore be published more than once, never lost: targets act once per
idempotency key (docs/events.md).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from openbrain.core.clock import utcnow
from openbrain.core.errors import UpstreamError
from openbrain.domain.events import from_outbox

if TYPE_CHECKING:
    from openbrain.aws.backend import Backend
    from openbrain.storage.orm import ChatSession

log = logging.getLogger(__name__)
# A sweep leaves an outbox this young alone: the turn that committed it is probably publishing it now.
SWEEP_GRACE = timedelta(seconds=60)


def publish(session: ChatSession, backend: Backend) -> bool:
    """Publish the committed `session`'s outbox and clear it. False if the bus refused (the outbox stays
    for the next turn or the sweep)."""
    events = from_outbox(session.outbox)
    if not events:
        return True
    try:
        backend.events.publish(events)
    except UpstreamError:
        log.warning("outbox of session %s kept: %d event(s) not published", session.session_id, len(events))
        return False
    try:
        backend.stores.sessions.clear_outbox(session)
    except UpstreamError:  # published all the same: a sweep publishes them again, which targets shrug off
        log.warning("outbox of session %s published but not cleared", session.session_id)
    return True


@dataclass
class FlushReport:
    sessions: int = 0
    events: int = 0
    failed: int = 0  # sessions whose outbox the bus refused (kept for the next sweep)


def flush(backend: Backend, grace: timedelta = SWEEP_GRACE) -> FlushReport:
    """Publish every outbox committed more than `grace` ago (a scan of the sessions table)."""
    report = FlushReport()
    for session in backend.stores.sessions.with_outbox(utcnow() - grace):
        report.sessions += 1
        waiting = len(session.outbox or [])
        if publish(session, backend):
            report.events += waiting
        else:
            report.failed += 1
    return report
