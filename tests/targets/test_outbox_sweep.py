"""The scheduled outbox sweep's Lambda handler, fed the event EventBridge Scheduler sends."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from support.events import delivered

from openbrain.aws.backend import Backend
from openbrain.core.clock import utcnow
from openbrain.domain.events import LeadCaptured, to_outbox
from openbrain.storage.orm import ChatSession
from openbrain.targets import outbox_sweep

pytestmark = pytest.mark.integration
# EventBridge Scheduler's target input when none is configured: an empty JSON object
SCHEDULED: dict[str, Any] = {}


def test_the_sweep_publishes_an_old_outbox_and_leaves_a_young_one(backend: Backend) -> None:
    # given: two sessions whose commits left events behind, one 2 minutes ago and one just now
    old, young = (ChatSession("acme", profile_name="default") for _ in range(2))
    for session in (old, young):
        event = LeadCaptured(client_id="acme", session_id=session.session_id, tool_call_id="call_1",
                             lead_id="01JLEADLEADLEADLEADLEAD000")
        session.outbox = to_outbox([event])
        session.save()
    ChatSession.get("acme", old.session_id).update([ChatSession.updated_at.set(utcnow() - timedelta(minutes=2))])

    # when
    report = outbox_sweep.handler(SCHEDULED, None)

    # then
    assert report == {"sessions": 1, "events": 1, "failed": 0}
    [event] = delivered(backend)
    assert event["detail"]["session_id"] == old.session_id
    assert ChatSession.get("acme", old.session_id).outbox is None
    assert ChatSession.get("acme", young.session_id).outbox is not None
