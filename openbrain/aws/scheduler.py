"""Arming and disarming scheduled messages: EventBridge Scheduler on AWS, nothing at all on the embedded backend.

A scheduled message (services/schedules.py) lives on its session; this module only makes the cloud call it
back at the right times. On `aws` each schedule is one EventBridge Scheduler schedule named `ob-<schedule id>`
in the stack's group (`OB_SCHEDULE_GROUP`), with:

- its `at(...)` / `cron(...)` / `rate(...)` expression and `ScheduleExpressionTimezone` (the wall time of the
  session's zone, DST included: Scheduler evaluates it there);
- `ActionAfterCompletion: DELETE` for a one-time schedule (Scheduler deletes it once it has fired), `NONE` for
  a recurring one (it lives until disarmed);
- `FlexibleTimeWindow: OFF` (on time, not within a window);
- the target: the delivery function (`OB_SCHEDULE_TARGET_ARN`), invoked as the role `OB_SCHEDULER_ROLE_ARN`,
  with `Input` the JSON of `ScheduleTarget` plus `"scheduled_time": "<aws.scheduler.scheduled-time>"`, a
  context attribute Scheduler replaces with the time the run was due (`2026-12-05T19:00:00Z`);
- `RetryPolicy` (`RETRY_POLICY`): Scheduler invokes Lambda asynchronously, so its retries only cover a failed
  *invocation* (throttled, the function or role missing or denied): up to 10 attempts within 1 hour, because a
  message an hour late is better parked than delivered; the handler's own failures are retried by Lambda's
  asynchronous invocation (template.yaml: `EventInvokeConfig`);
- `DeadLetterConfig`: the schedules' SQS dead-letter queue (`OB_SCHEDULE_DLQ_ARN`), where both kinds of failure
  end (template.yaml: the function's `DeadLetterQueue` is the same queue).

On `memory` nothing is armed: ob-serve's scheduler loop reads the sessions' `next_schedule_at` itself.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from openbrain.core.errors import ConfigurationError, InvalidInputError, UpstreamError
from openbrain.core.ids import NAME_PATTERN

if TYPE_CHECKING:
    from openbrain.core.settings import Settings

log = logging.getLogger(__name__)

NAME_PREFIX = "ob-"
SCHEDULED_TIME = "<aws.scheduler.scheduled-time>"  # replaced by Scheduler on each run (docs: context attributes)
RETRY_POLICY = {"MaximumEventAgeInSeconds": 3600, "MaximumRetryAttempts": 10}
_SCHEDULE_NAME = re.compile(r"[0-9A-Za-z_.-]{1,64}")  # Scheduler's rule for a schedule's name
# AWS errors that mean this deployment is wrong (not a passing outage): ConfigurationError, named for an operator
_CONFIGURATION_CODES = {"AccessDeniedException", "ResourceNotFoundException", "ValidationException",
                        "UnrecognizedClientException", "InvalidSignatureException", "ServiceQuotaExceededException"}


@dataclass(frozen=True)
class ScheduleTarget:
    """What the delivery handler gets as its event (Scheduler's `Input`, JSON): which schedule of which session."""

    client_id: str
    session_id: str
    schedule_id: str


class Scheduler(Protocol):
    def arm(self, target: ScheduleTarget, expression: str, timezone: str, *, recurring: bool) -> None:
        """Make the cloud invoke the delivery handler with `target` at each time `expression` names."""

    def disarm(self, schedule_id: str) -> None:
        """Stop it (a schedule already gone, fired and deleted or never armed, is no error)."""


def schedule_name(schedule_id: str) -> str:
    """The Scheduler name of a schedule: `ob-<schedule id>` (`InvalidInputError` for an id that cannot be one)."""
    name = NAME_PREFIX + schedule_id
    if not NAME_PATTERN.fullmatch(schedule_id) or not _SCHEDULE_NAME.fullmatch(name):
        raise InvalidInputError("a schedule id is 1-61 letters, digits, '-' or '_'")
    return name


def schedule_input(target: ScheduleTarget) -> str:
    """The `Input` of a schedule: the target's ids and the context attribute of the run's due time."""
    return json.dumps({**asdict(target), "scheduled_time": SCHEDULED_TIME}, separators=(",", ":"))


class MalformedScheduleEventError(InvalidInputError):
    """An event given to the delivery handler that is not a schedule's `Input` (`schedule_input`)."""

    code = "malformed_schedule_event"


_ID = f"^{NAME_PATTERN.pattern}$"  # pydantic's patterns search: anchor it


class _ScheduleEvent(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    client_id: str = Field(pattern=_ID)
    session_id: str = Field(pattern=_ID)
    schedule_id: str = Field(pattern=_ID)
    scheduled_time: AwareDatetime


def parse_schedule_event(event: Any) -> tuple[ScheduleTarget, datetime]:
    """The target and the due time (aware UTC) of a run, from the event Scheduler invokes the handler with.
    Raises `MalformedScheduleEventError` naming the fields that are wrong, never their values."""
    if not isinstance(event, dict):
        raise MalformedScheduleEventError("the event is not a JSON object")
    try:
        parsed = _ScheduleEvent.model_validate(event)
    except ValidationError as exc:
        fields = sorted({".".join(str(p) for p in e["loc"]) or "event" for e in exc.errors()})
        raise MalformedScheduleEventError(f"the schedule event is invalid ({', '.join(fields)})") from exc
    target = ScheduleTarget(parsed.client_id, parsed.session_id, parsed.schedule_id)
    return target, parsed.scheduled_time.astimezone(UTC)


class StoreScheduler:
    """The embedded backend's: nothing to arm, ob-serve's loop finds due schedules on the sessions."""

    def arm(self, target: ScheduleTarget, expression: str, timezone: str, *, recurring: bool) -> None:
        return None

    def disarm(self, schedule_id: str) -> None:
        return None


class EventBridgeScheduler:
    """Schedules of one stack's group, through a boto3 `scheduler` client (module docstring)."""

    def __init__(self, client: Any, *, group: str, role_arn: str | None, target_arn: str | None,
                 dlq_arn: str | None = None) -> None:
        self._client = client
        self.group = group
        self.role_arn = role_arn
        self.target_arn = target_arn
        self.dlq_arn = dlq_arn

    @classmethod
    def from_settings(cls, client: Any, settings: Settings) -> EventBridgeScheduler:
        return cls(client, group=settings.schedule_group, role_arn=settings.scheduler_role_arn,
                   target_arn=settings.schedule_target_arn, dlq_arn=settings.schedule_dlq_arn)

    def request(self, target: ScheduleTarget, expression: str, timezone: str, *, recurring: bool) -> dict[str, Any]:
        """The `CreateSchedule` (and `UpdateSchedule`) parameters of a schedule."""
        if not self.target_arn:
            raise ConfigurationError("OB_SCHEDULE_TARGET_ARN is not set: the delivery function of scheduled "
                                     "messages is unknown")
        if not self.role_arn:
            raise ConfigurationError("OB_SCHEDULER_ROLE_ARN is not set: EventBridge Scheduler has no role to "
                                     "invoke the delivery function with")
        scheduled: dict[str, Any] = {"Arn": self.target_arn, "RoleArn": self.role_arn,
                                     "Input": schedule_input(target), "RetryPolicy": dict(RETRY_POLICY)}
        if self.dlq_arn:
            scheduled["DeadLetterConfig"] = {"Arn": self.dlq_arn}
        return {
            "Name": schedule_name(target.schedule_id),
            "GroupName": self.group,
            "ScheduleExpression": expression,
            "ScheduleExpressionTimezone": timezone,
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "ActionAfterCompletion": "NONE" if recurring else "DELETE",
            "State": "ENABLED",
            "Description": f"OpenBrain scheduled message of session {target.session_id}",
            "Target": scheduled,
        }

    def arm(self, target: ScheduleTarget, expression: str, timezone: str, *, recurring: bool) -> None:
        """Create the schedule; arming one that exists (a retried request) replaces its settings."""
        request = self.request(target, expression, timezone, recurring=recurring)
        try:
            self._client.create_schedule(**request)
        except Exception as exc:
            if _error_code(exc) != "ConflictException":
                raise _translated(exc, f"could not create the schedule {request['Name']}") from exc
            try:
                self._client.update_schedule(**request)
            except Exception as again:
                raise _translated(again, f"could not update the schedule {request['Name']}") from again
        log.info("armed schedule %s in group %s (%s, %s)", request["Name"], self.group, expression, timezone)

    def disarm(self, schedule_id: str) -> None:
        """Delete the schedule; one already gone (a one-time schedule Scheduler deleted after it fired) is fine."""
        name = schedule_name(schedule_id)
        try:
            self._client.delete_schedule(Name=name, GroupName=self.group)
        except Exception as exc:
            if _error_code(exc) == "ResourceNotFoundException":
                log.info("schedule %s was already gone", name)
                return
            raise _translated(exc, f"could not delete the schedule {name}") from exc
        log.info("disarmed schedule %s in group %s", name, self.group)


def _error_code(exc: Exception) -> str | None:
    response = getattr(exc, "response", None)  # botocore's ClientError; no common base worth importing here
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", "")) or None
    return None


def _translated(exc: Exception, doing: str) -> Exception:
    """`exc` from boto3 as our error: the deployment's fault (`ConfigurationError`, for an operator: the AWS
    code, never its message, which may quote ARNs and inputs) or a passing one (`UpstreamError`)."""
    code = _error_code(exc)
    log.error("%s: %s", doing, code or type(exc).__name__)
    if type(exc).__name__ == "NoCredentialsError":
        return ConfigurationError(f"{doing}: no AWS credentials")
    if code in _CONFIGURATION_CODES:
        return ConfigurationError(f"{doing}: EventBridge Scheduler answered {code} (check the schedule group, "
                                  "the scheduler role and the delivery function of the stack)")
    return UpstreamError("the scheduler is unavailable")
