"""The EventBridge Scheduler adapter against moto's Scheduler (create, one-time deleted after completion, update,
cancel), its errors as botocore raises them (botocore's Stubber), and the event it makes the handler get."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.stub import Stubber

from openbrain.aws.backend import Backend
from openbrain.aws.scheduler import (
    RETRY_POLICY,
    SCHEDULED_TIME,
    EventBridgeScheduler,
    MalformedScheduleEventError,
    ScheduleTarget,
    StoreScheduler,
    parse_schedule_event,
    schedule_input,
    schedule_name,
)
from openbrain.core.errors import ConfigurationError, InvalidInputError, UpstreamError
from openbrain.core.ids import new_id
from openbrain.core.settings import Settings

pytestmark = pytest.mark.integration
GROUP = "acme-stack-schedules"
ROLE = "arn:aws:iam::123456789012:role/acme-stack-scheduler"
FUNCTION = "arn:aws:lambda:us-east-1:123456789012:function:acme-stack-scheduled-delivery"
DLQ = "arn:aws:sqs:us-east-1:123456789012:acme-stack-schedules-dlq"


@pytest.fixture
def client(backend: Backend) -> Any:
    """moto's Scheduler, with the stack's group (template.yaml creates it)."""
    scheduler = backend.client("scheduler")
    scheduler.create_schedule_group(Name=GROUP)
    return scheduler


@pytest.fixture
def scheduler(client: Any) -> EventBridgeScheduler:
    return EventBridgeScheduler(client, group=GROUP, role_arn=ROLE, target_arn=FUNCTION, dlq_arn=DLQ)


def _target() -> ScheduleTarget:
    return ScheduleTarget(client_id="acme", session_id=new_id(), schedule_id=new_id())


def _names(client: Any) -> list[str]:
    return sorted(s["Name"] for s in client.list_schedules(GroupName=GROUP)["Schedules"])


def test_a_one_time_schedule_is_created_in_the_group_and_deleted_after_completion(
        client: Any, scheduler: EventBridgeScheduler) -> None:
    # given
    target = _target()

    # when
    scheduler.arm(target, "at(2026-12-05T19:00:00)", "Europe/London", recurring=False)

    # then
    stored = client.get_schedule(Name=f"ob-{target.schedule_id}", GroupName=GROUP)
    assert stored["ScheduleExpression"] == "at(2026-12-05T19:00:00)"
    assert stored["ScheduleExpressionTimezone"] == "Europe/London"
    assert stored["ActionAfterCompletion"] == "DELETE"
    assert stored["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert stored["State"] == "ENABLED"
    assert stored["Arn"].endswith(f":schedule/{GROUP}/ob-{target.schedule_id}")
    assert stored["Target"]["Arn"] == FUNCTION
    assert stored["Target"]["RoleArn"] == ROLE
    assert stored["Target"]["RetryPolicy"] == RETRY_POLICY
    assert stored["Target"]["DeadLetterConfig"] == {"Arn": DLQ}
    assert json.loads(stored["Target"]["Input"]) == {
        "client_id": "acme", "session_id": target.session_id, "schedule_id": target.schedule_id,
        "scheduled_time": "<aws.scheduler.scheduled-time>"}
    assert target.session_id in stored["Description"]


def test_a_recurring_schedule_lives_after_each_run(client: Any, scheduler: EventBridgeScheduler) -> None:
    target = _target()

    scheduler.arm(target, "cron(0 8 * * ? *)", "America/New_York", recurring=True)

    stored = client.get_schedule(Name=schedule_name(target.schedule_id), GroupName=GROUP)
    assert (stored["ScheduleExpression"], stored["ScheduleExpressionTimezone"]) == (
        "cron(0 8 * * ? *)", "America/New_York")
    assert stored["ActionAfterCompletion"] == "NONE"


def test_arming_the_same_schedule_again_replaces_it(client: Any, scheduler: EventBridgeScheduler) -> None:
    # given: a schedule armed once (a request retried after its first attempt armed it)
    target = _target()
    scheduler.arm(target, "rate(2 hours)", "UTC", recurring=True)

    # when (of the same kind: moto 5.2's UpdateSchedule ignores ActionAfterCompletion, AWS's does not)
    scheduler.arm(target, "cron(0 9 ? * MON-FRI *)", "Europe/Paris", recurring=True)

    # then: one schedule, with the new settings
    assert _names(client) == [schedule_name(target.schedule_id)]
    stored = client.get_schedule(Name=schedule_name(target.schedule_id), GroupName=GROUP)
    assert (stored["ScheduleExpression"], stored["ScheduleExpressionTimezone"]) == (
        "cron(0 9 ? * MON-FRI *)", "Europe/Paris")
    assert stored["Target"]["RetryPolicy"] == RETRY_POLICY


def test_disarming_deletes_the_schedule_and_a_gone_one_is_no_error(
        client: Any, scheduler: EventBridgeScheduler) -> None:
    # given: two schedules
    kept, cancelled = _target(), _target()
    scheduler.arm(kept, "rate(1 day)", "UTC", recurring=True)
    scheduler.arm(cancelled, "at(2026-12-05T09:00:00)", "UTC", recurring=False)

    # when: one is cancelled twice (the second time it is gone, as after it fired), and one never armed
    scheduler.disarm(cancelled.schedule_id)
    scheduler.disarm(cancelled.schedule_id)
    scheduler.disarm(new_id())

    # then
    assert _names(client) == [schedule_name(kept.schedule_id)]


def test_without_a_dlq_the_schedule_has_no_dead_letter_config(client: Any) -> None:
    target = _target()

    EventBridgeScheduler(client, group=GROUP, role_arn=ROLE, target_arn=FUNCTION).arm(
        target, "rate(1 hour)", "UTC", recurring=True)

    assert "DeadLetterConfig" not in client.get_schedule(Name=schedule_name(target.schedule_id),
                                                        GroupName=GROUP)["Target"]


@pytest.mark.parametrize(("missing", "variable"), [("role_arn", "OB_SCHEDULER_ROLE_ARN"),
                                                   ("target_arn", "OB_SCHEDULE_TARGET_ARN")])
def test_arming_without_the_role_or_the_function_names_the_variable_and_creates_nothing(
        client: Any, missing: str, variable: str) -> None:
    arns = {"role_arn": ROLE, "target_arn": FUNCTION, missing: None}

    with pytest.raises(ConfigurationError, match=variable):
        EventBridgeScheduler(client, group=GROUP, **arns).arm(_target(), "rate(1 hour)", "UTC", recurring=True)

    assert _names(client) == []


@pytest.mark.parametrize("schedule_id", ["", "has space", "a/b", "x" * 62])
def test_a_schedule_id_that_cannot_name_a_schedule_is_refused(
        scheduler: EventBridgeScheduler, schedule_id: str) -> None:
    with pytest.raises(InvalidInputError):
        scheduler.disarm(schedule_id)


# ------------------------------------------------------------------------------------- errors, as botocore raises them
@pytest.mark.parametrize(("code", "status", "expected"), [
    ("AccessDeniedException", 403, ConfigurationError),
    ("ResourceNotFoundException", 404, ConfigurationError),  # the group is gone
    ("ValidationException", 400, ConfigurationError),
    ("ThrottlingException", 429, UpstreamError),
    ("InternalServerException", 500, UpstreamError),
])
def test_aws_errors_become_ours_without_the_aws_message(
        backend: Backend, code: str, status: int, expected: type[Exception]) -> None:
    client = backend.client("scheduler")
    scheduler = EventBridgeScheduler(client, group=GROUP, role_arn=ROLE, target_arn=FUNCTION)
    with Stubber(client) as stub:
        stub.add_client_error("create_schedule", service_error_code=code, http_status_code=status,
                              service_message=f"User {ROLE} is not authorized (input: secret prompt)")

        with pytest.raises(expected) as caught:
            scheduler.arm(_target(), "rate(1 hour)", "UTC", recurring=True)

    assert type(caught.value) is expected
    assert ROLE not in str(caught.value) and "secret prompt" not in str(caught.value)
    if expected is ConfigurationError:
        assert code in str(caught.value)
    else:
        assert str(caught.value) == "the scheduler is unavailable"


def test_a_failed_delete_is_an_error(backend: Backend) -> None:
    client = backend.client("scheduler")
    scheduler = EventBridgeScheduler(client, group=GROUP, role_arn=ROLE, target_arn=FUNCTION)
    with Stubber(client) as stub:
        stub.add_client_error("delete_schedule", service_error_code="ThrottlingException", http_status_code=429)

        with pytest.raises(UpstreamError, match="the scheduler is unavailable"):
            scheduler.disarm(new_id())


# ------------------------------------------------------------------------------------- the backend's scheduler
def test_the_memory_backend_arms_nothing(backend: Backend) -> None:
    assert isinstance(backend.scheduler, StoreScheduler)
    backend.scheduler.arm(_target(), "rate(1 hour)", "UTC", recurring=True)
    backend.scheduler.disarm(new_id())
    assert backend.client("scheduler").list_schedules()["Schedules"] == []


def test_the_aws_backend_schedules_in_the_group_the_environment_names(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"OB_SCHEDULE_GROUP": GROUP, "OB_SCHEDULER_ROLE_ARN": ROLE,
                        "OB_SCHEDULE_TARGET_ARN": FUNCTION, "OB_SCHEDULE_DLQ_ARN": DLQ}.items():
        monkeypatch.setenv(name, value)

    scheduler = Backend(Settings(backend="aws", memory_store=None)).scheduler

    assert isinstance(scheduler, EventBridgeScheduler)
    assert (scheduler.group, scheduler.role_arn, scheduler.target_arn, scheduler.dlq_arn) == (
        GROUP, ROLE, FUNCTION, DLQ)


def test_the_default_group_and_blank_arns() -> None:
    settings = Settings(backend="aws", memory_store=None, scheduler_role_arn="", schedule_dlq_arn="")
    assert settings.schedule_group == "openbrain-schedules"
    assert (settings.scheduler_role_arn, settings.schedule_dlq_arn) == (None, None)


# ------------------------------------------------------------------------------------- the handler's event
def test_the_event_scheduler_sends_parses_back_into_the_target_and_its_due_time() -> None:
    # given: the Input as armed, with the context attribute replaced as Scheduler does on a run
    target = _target()
    payload = schedule_input(target)
    assert SCHEDULED_TIME in payload
    event = json.loads(payload.replace(SCHEDULED_TIME, "2026-12-05T19:00:00Z"))

    # when
    parsed, due = parse_schedule_event(event)

    # then
    assert parsed == target
    assert due == datetime(2026, 12, 5, 19, 0, tzinfo=UTC) and due.tzinfo is UTC


@pytest.mark.parametrize(("event", "named"), [
    ([1, 2], "not a JSON object"),
    ({}, "client_id, schedule_id, scheduled_time, session_id"),
    ({"client_id": "acme", "session_id": "s1", "schedule_id": "x1", "scheduled_time": SCHEDULED_TIME},
     "scheduled_time"),  # the placeholder not replaced: invoked by hand with the Input
    ({"client_id": "acme", "session_id": "s1", "schedule_id": "x1", "scheduled_time": "2026-12-05T19:00:00"},
     "scheduled_time"),  # no zone
    ({"client_id": "ac me", "session_id": "s1", "schedule_id": "x1", "scheduled_time": "2026-12-05T19:00:00Z"},
     "client_id"),
    ({"client_id": "acme", "session_id": 7, "schedule_id": "x1", "scheduled_time": "2026-12-05T19:00:00Z"},
     "session_id"),
])
def test_a_malformed_event_names_the_wrong_fields_not_their_values(event: Any, named: str) -> None:
    with pytest.raises(MalformedScheduleEventError) as caught:
        parse_schedule_event(event)

    assert named in caught.value.message
    assert "ac me" not in caught.value.message
    assert caught.value.code == "malformed_schedule_event"
