"""Scheduled messages through the parts AWS runs: EventBridge Scheduler (moto's) armed and disarmed as schedules
are made, cancelled, delivered and refused, the delivery Lambda fed the event Scheduler sends, and a prompt to the
chatbot counted as the client's turn (its quotas, its usage)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from support.targets import load_handler

from openbrain.aws.backend import Backend
from openbrain.aws.scheduler import SCHEDULED_TIME, EventBridgeScheduler
from openbrain.conversation.chat import ChatMessage, chat
from openbrain.conversation.schedules import schedule, schedules_of
from openbrain.core.clock import utcnow
from openbrain.core.errors import ConflictError
from openbrain.domain.limits import RateLimits
from openbrain.services.schedules import deliver_due
from openbrain.services.sessions import cancel_schedule, get_session
from openbrain.services.usage import usage_report
from openbrain.storage.orm import AgentConfig, ChatSession, Client

pytestmark = pytest.mark.integration
GROUP = "acme-stack-schedules"
ROLE = "arn:aws:iam::123456789012:role/acme-stack-scheduler"
FUNCTION = "arn:aws:lambda:us-east-1:123456789012:function:acme-stack-scheduled-delivery"


@pytest.fixture
def acme(backend: Backend) -> Client:
    client = Client("acme", display_name="Acme")
    client.save()
    AgentConfig("acme", "default", icebreaker="Hi!", model="offline", tools=["calculator"]).save()
    return client


@pytest.fixture
def scheduler(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The backend arms in moto's EventBridge Scheduler, as the `aws` backend does in a stack: its client."""
    client = backend.client("scheduler")
    client.create_schedule_group(Name=GROUP)
    armed = EventBridgeScheduler(client, group=GROUP, role_arn=ROLE, target_arn=FUNCTION)
    monkeypatch.setattr(Backend, "scheduler", property(lambda self: armed))
    return client


@pytest.fixture
def handler() -> Any:
    return load_handler("scheduled_delivery")


def _start() -> str:
    return chat(ChatMessage.parse({"clientId": "acme", "reset": True})).session_id


def _say(session_id: str, message: str) -> None:
    chat(ChatMessage.parse({"clientId": "acme", "sessionId": session_id, "message": message}))


def _armed(client: Any) -> dict[str, dict[str, Any]]:
    return {s["Name"]: client.get_schedule(Name=s["Name"], GroupName=GROUP)
            for s in client.list_schedules(GroupName=GROUP)["Schedules"]}


def test_each_schedule_is_armed_in_scheduler_and_disarmed_when_it_ends(acme: Client, scheduler: Any,
                                                                       handler: Any, backend: Backend) -> None:
    # given: a one-time prompt to the chatbot and a recurring message to the user
    session_id = _start()
    _say(session_id, "dps c in 1 minute\nwhat is 6 * 7")
    _say(session_id, "dps u every weekday at 9am\nStand-up time")
    once, daily = sorted(schedules_of(ChatSession.get("acme", session_id)), key=lambda s: s.recurring)
    armed = _armed(scheduler)
    # then: each is a schedule of the group, with its expression, zone, completion and input
    assert set(armed) == {f"ob-{once.id}", f"ob-{daily.id}"}
    one_time, weekly = armed[f"ob-{once.id}"], armed[f"ob-{daily.id}"]
    assert one_time["ScheduleExpression"].startswith("at(") and one_time["ActionAfterCompletion"] == "DELETE"
    assert (weekly["ScheduleExpression"], weekly["ScheduleExpressionTimezone"]) == (
        "cron(0 9 ? * MON,TUE,WED,THU,FRI *)", "UTC")
    assert weekly["Target"]["Arn"] == FUNCTION and weekly["Target"]["RoleArn"] == ROLE
    run = json.loads(one_time["Target"]["Input"].replace(SCHEDULED_TIME, once.next_at.strftime("%Y-%m-%dT%H:%M:%SZ")))

    # when: Scheduler runs the one-time schedule (the function gets its Input, the due time filled in)
    result = handler(run, None)

    # then: delivered, stored, and the schedule deleted (Scheduler does it after completion; so do we)
    assert result["status"] == "handled"
    messages = get_session(backend.stores, "acme", session_id).messages
    assert [m.content for m in messages if m.scheduled] == ["what is 6 * 7"] and "42" in messages[-1].content
    assert set(_armed(scheduler)) == {f"ob-{daily.id}"}
    # a retry of that run finds nothing to do
    assert handler(run, None)["status"] == "handled"
    assert [m.content for m in get_session(backend.stores, "acme", session_id).messages if m.scheduled] == [
        "what is 6 * 7"]

    # when: the recurring one is cancelled
    cancel_schedule(backend, "acme", session_id, daily.id)
    # then
    assert _armed(scheduler) == {}


def test_a_schedule_whose_commit_fails_is_disarmed(acme: Client, scheduler: Any, backend: Backend) -> None:
    session_id = _start()
    stale = ChatSession.get("acme", session_id)
    _say(session_id, "dps u in 1 hour\nfirst")
    with pytest.raises(ConflictError):
        schedule(stale, backend, "user", "in 2 hours", "second", created_by="api")
    [kept] = schedules_of(ChatSession.get("acme", session_id))
    assert set(_armed(scheduler)) == {f"ob-{kept.id}"}


def test_a_prompt_to_the_chatbot_is_the_clients_turn_counted_against_its_quotas(acme: Client,
                                                                               backend: Backend) -> None:
    # given: a daily quota of one turn, and two prompts to the chatbot due
    backend.stores.clients.set_limits(acme, RateLimits(turns_per_day=1).changed())
    first, second = _start(), _start()
    _say(first, "dps c in 1 minute\nwhat is 2 * 3")
    _say(second, "dps c in 2 minutes\nwhat is 3 * 4")
    # when
    done = deliver_due(backend, utcnow() + timedelta(minutes=3))
    # then: the first ran, the second was over the quota: skipped, not sent, gone (a one-time schedule)
    assert [d.text is not None for d in done] == [True, False]
    assert [m.content for m in get_session(backend.stores, "acme", second).messages] == ["Hi!"]
    assert ChatSession.get("acme", second).schedules is None
    today = utcnow().date()
    totals = usage_report(backend.stores.counters, "acme", today, today).totals
    assert (totals.turns, totals.rate_limited) == (1, 1) and totals.output_tokens > 0
