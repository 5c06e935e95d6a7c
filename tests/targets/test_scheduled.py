"""The scheduled delivery function, fed the events EventBridge Scheduler sends: a malformed one is dropped with a
WARNING, never raised (retrying cannot repair it). Delivering a well-formed one: tests/services/
test_scheduled_delivery.py."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from support.targets import load_handler

from openbrain.aws.scheduler import SCHEDULED_TIME, ScheduleTarget, schedule_input


@pytest.fixture(scope="module")
def handler() -> Any:
    return load_handler("scheduled_delivery")


def _armed_input(**changes: Any) -> dict[str, Any]:
    """The Input a schedule is armed with, as Scheduler sends it on a run (the context attribute replaced)."""
    payload = schedule_input(ScheduleTarget("acme", "01KSESSIONSESSIONSESSION00", "01KSCHEDULESCHEDULESCHED00"))
    event: dict[str, Any] = json.loads(payload.replace(SCHEDULED_TIME, "2026-12-05T19:00:00Z"))
    event.update(changes)
    return {key: value for key, value in event.items() if value is not None}


@pytest.mark.parametrize(("event", "named"), [
    (None, "not a JSON object"),
    ("{}", "not a JSON object"),
    ({}, "client_id, schedule_id, scheduled_time, session_id"),
    (_armed_input(scheduled_time=SCHEDULED_TIME), "scheduled_time"),  # the Input invoked by hand
    (_armed_input(scheduled_time="tomorrow"), "scheduled_time"),
    (_armed_input(schedule_id=None), "schedule_id"),
    (_armed_input(client_id="../other-client"), "client_id"),
    (_armed_input(session_id=["01KSESSION"]), "session_id"),
], ids=["null", "a string", "empty", "placeholder", "not a time", "no schedule", "bad client", "a list"])
def test_a_malformed_event_is_dropped_with_a_warning_naming_the_fields(
        handler: Any, caplog: pytest.LogCaptureFixture, event: Any, named: str) -> None:
    # when
    with caplog.at_level(logging.INFO, logger="openbrain"):
        result = handler(event, None)

    # then: answered, not raised (no retry), and said so at WARNING without the values
    assert result["status"] == "malformed"
    assert named in result["reason"]
    [record] = [r for r in caplog.records if r.name == "openbrain.targets.scheduled"]
    assert record.levelno == logging.WARNING
    assert named in record.getMessage() and "not retried" in record.getMessage()
    assert "../other-client" not in record.getMessage() and "tomorrow" not in record.getMessage()

