"""The JSON every event carries, pinned: targets (webhooks, CRMs) are written against it.

Changing a detail here is a breaking change for every consumer: add a new versioned detail type instead.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from openbrain.aws.backend import Backend
from openbrain.aws.events import EventPublisher
from openbrain.conversation.tools.context import ToolContext
from openbrain.conversation.tools.conversation import end_conversation
from openbrain.conversation.tools.lead import capture_lead
from openbrain.core.errors import UpstreamError
from openbrain.core.ids import new_id
from openbrain.domain.events import (
    EVENT_SOURCE,
    EVENT_TYPES,
    ConversationEnded,
    Event,
    LeadCaptured,
    LeadDelivered,
    LeadUpdated,
    MessageDelivered,
    MessageScheduled,
    from_outbox,
    to_outbox,
)
from openbrain.storage.orm.lead import LEAD_FIELDS

AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
EVENT_ID = "01JAAAAAAAAAAAAAAAAAAAAAAA"
SESSION_ID = "01JSESSIONSESSIONSESSION00"
LEAD_ID = "01JLEADLEADLEADLEADLEAD000"
SCHEDULE_ID = "01JSCHEDULESCHEDULESCHED00"
COMMON_KEYS = {"event_id", "occurred_at", "client_id", "session_id", "tool_call_id", "idempotency_key"}
WEBHOOK_QUEUE = "openbrain-lead-webhook"


def _captured(**overrides: Any) -> LeadCaptured:
    fields = {"event_id": EVENT_ID, "occurred_at": AT, "client_id": "acme", "session_id": SESSION_ID,
              "tool_call_id": "call_1", "lead_id": LEAD_ID, **overrides}
    return LeadCaptured(**fields)


def _updated(**overrides: Any) -> LeadUpdated:
    fields = {"event_id": EVENT_ID, "occurred_at": AT, "client_id": "acme", "session_id": SESSION_ID,
              "tool_call_id": "call_2", "lead_id": LEAD_ID, "changed_fields": ["phone"], **overrides}
    return LeadUpdated(**fields)


def _ended(**overrides: Any) -> ConversationEnded:
    fields = {"event_id": EVENT_ID, "occurred_at": AT, "client_id": "acme", "session_id": SESSION_ID,
              "tool_call_id": "call_3", "turn_count": 3, "lead_id": None, **overrides}
    return ConversationEnded(**fields)


def _delivered(**overrides: Any) -> LeadDelivered:
    fields = {"event_id": EVENT_ID, "occurred_at": AT, "client_id": "acme", "session_id": SESSION_ID,
              "tool_call_id": "call_1", "lead_id": LEAD_ID, "target": "lead-webhook",
              "delivered_event_type": "lead.captured.v1", "delivered_event_id": "01JCAPTUREDCAPTUREDCAPTURE0",
              "delivered_idempotency_key": "dff413db401499cf724bb37c4a71b98d", **overrides}
    return LeadDelivered(**fields)


def _scheduled(**overrides: Any) -> MessageScheduled:
    fields = {"event_id": EVENT_ID, "occurred_at": AT, "client_id": "acme", "session_id": SESSION_ID,
              "tool_call_id": "call_4", "schedule_id": SCHEDULE_ID, "recipient": "chatbot",
              "expression": "cron(0 8 * * ? *)", "timezone": "Europe/London",
              "description": "every day at 08:00 (Europe/London)", "next_at": datetime(2026, 1, 3, 8, tzinfo=UTC),
              "created_by": "user", **overrides}
    return MessageScheduled(**fields)


def _message_delivered(**overrides: Any) -> MessageDelivered:
    # tool_call_id: the run's due time, so each run of a recurring schedule has its own idempotency key
    fields = {"event_id": EVENT_ID, "occurred_at": AT, "client_id": "acme", "session_id": SESSION_ID,
              "tool_call_id": "2026-01-03T08:00:00Z", "schedule_id": SCHEDULE_ID, "recipient": "chatbot",
              "text": "Today's monkey: the golden snub-nosed monkey.",
              "delivered_at": datetime(2026, 1, 3, 8, 0, 2, tzinfo=UTC), **overrides}
    return MessageDelivered(**fields)


# --- the pinned JSON -------------------------------------------------------------------------------------


def test_lead_captured_v1_detail() -> None:
    assert LeadCaptured.detail_type == "lead.captured.v1"
    assert _captured().detail() == {
        "event_id": EVENT_ID,
        "occurred_at": "2026-01-02T03:04:05Z",
        "client_id": "acme",
        "session_id": SESSION_ID,
        "tool_call_id": "call_1",
        "idempotency_key": "dff413db401499cf724bb37c4a71b98d",
        "lead_id": LEAD_ID,
    }


def test_lead_updated_v1_detail() -> None:
    assert LeadUpdated.detail_type == "lead.updated.v1"
    assert _updated().detail() == {
        "event_id": EVENT_ID,
        "occurred_at": "2026-01-02T03:04:05Z",
        "client_id": "acme",
        "session_id": SESSION_ID,
        "tool_call_id": "call_2",
        "idempotency_key": "c9547d93949e5ff42eb5c58a5b8d1753",
        "lead_id": LEAD_ID,
        "changed_fields": ["phone"],
    }


def test_conversation_ended_v1_detail() -> None:
    assert ConversationEnded.detail_type == "conversation.ended.v1"
    assert _ended().detail() == {
        "event_id": EVENT_ID,
        "occurred_at": "2026-01-02T03:04:05Z",
        "client_id": "acme",
        "session_id": SESSION_ID,
        "tool_call_id": "call_3",
        "idempotency_key": "00943f0fa681e5e138e8afe7788abe4a",
        "turn_count": 3,
        "lead_id": None,
    }
    assert _ended(lead_id=LEAD_ID).detail()["lead_id"] == LEAD_ID


def test_lead_delivered_v1_detail() -> None:
    assert LeadDelivered.detail_type == "lead.delivered.v1"
    assert _delivered().detail() == {
        "event_id": EVENT_ID,
        "occurred_at": "2026-01-02T03:04:05Z",
        "client_id": "acme",
        "session_id": SESSION_ID,
        "tool_call_id": "call_1",
        "idempotency_key": "9028e8e32aff6b0de14a9a42799be346",
        "lead_id": LEAD_ID,
        "target": "lead-webhook",
        "delivered_event_type": "lead.captured.v1",
        "delivered_event_id": "01JCAPTUREDCAPTUREDCAPTURE0",
        "delivered_idempotency_key": "dff413db401499cf724bb37c4a71b98d",
    }


def test_message_scheduled_v1_detail() -> None:
    assert MessageScheduled.detail_type == "message.scheduled.v1"
    assert _scheduled().detail() == {
        "event_id": EVENT_ID,
        "occurred_at": "2026-01-02T03:04:05Z",
        "client_id": "acme",
        "session_id": SESSION_ID,
        "tool_call_id": "call_4",
        "idempotency_key": "e672e87273a02d53fb561dc187d02ca1",
        "schedule_id": SCHEDULE_ID,
        "recipient": "chatbot",
        "expression": "cron(0 8 * * ? *)",
        "timezone": "Europe/London",
        "description": "every day at 08:00 (Europe/London)",
        "next_at": "2026-01-03T08:00:00Z",
        "created_by": "user",
    }


def test_message_delivered_v1_detail() -> None:
    assert MessageDelivered.detail_type == "message.delivered.v1"
    assert _message_delivered().detail() == {
        "event_id": EVENT_ID,
        "occurred_at": "2026-01-02T03:04:05Z",
        "client_id": "acme",
        "session_id": SESSION_ID,
        "tool_call_id": "2026-01-03T08:00:00Z",
        "idempotency_key": "68b956face5cf95a542626b6c83599c2",
        "schedule_id": SCHEDULE_ID,
        "recipient": "chatbot",
        "text": "Today's monkey: the golden snub-nosed monkey.",
        "delivered_at": "2026-01-03T08:00:02Z",
    }


def test_each_run_of_a_recurring_schedule_has_its_own_idempotency_key() -> None:
    first, retried = _message_delivered(), _message_delivered(event_id=new_id())
    tomorrow = _message_delivered(tool_call_id="2026-01-04T08:00:00Z")

    assert first.idempotency_key == retried.idempotency_key != tomorrow.idempotency_key


def test_these_are_all_the_event_types() -> None:
    assert set(EVENT_TYPES) == {"lead.captured.v1", "lead.updated.v1", "conversation.ended.v1", "lead.delivered.v1",
                                "message.scheduled.v1", "message.delivered.v1"}
    assert all(re.fullmatch(r"[a-z]+\.[a-z]+\.v\d+", name) for name in EVENT_TYPES)


@pytest.mark.parametrize(
    ("event", "object_key", "extra_keys"),
    [
        (_captured(), "lead_id", {"lead_id"}),
        (_updated(), "lead_id", {"lead_id", "changed_fields"}),
        (_ended(), "session_id", {"turn_count", "lead_id"}),
        (_delivered(), "lead_id", {"lead_id", "target", "delivered_event_type", "delivered_event_id",
                                   "delivered_idempotency_key"}),
        (_scheduled(), "schedule_id", {"schedule_id", "recipient", "expression", "timezone", "description",
                                       "next_at", "created_by"}),
        (_message_delivered(), "schedule_id", {"schedule_id", "recipient", "text", "delivered_at"}),
    ],
    ids=["lead.captured.v1", "lead.updated.v1", "conversation.ended.v1", "lead.delivered.v1", "message.scheduled.v1",
         "message.delivered.v1"],
)
def test_every_detail_has_the_ids_a_target_needs_and_types_it_can_rely_on(
    event: Event, object_key: str, extra_keys: set[str]
) -> None:
    detail = json.loads(json.dumps(event.detail()))

    assert set(detail) == COMMON_KEYS | extra_keys
    for key in COMMON_KEYS - {"occurred_at"}:
        assert isinstance(detail[key], str) and detail[key], key
    assert datetime.fromisoformat(detail["occurred_at"]).utcoffset() is not None
    assert re.fullmatch(r"[0-9a-f]{32}", detail["idempotency_key"])
    assert detail[object_key] == event.object_id()
    assert event.summary() == {"type": event.detail_type, "event_id": EVENT_ID, "object_id": event.object_id()}
    if "changed_fields" in detail:
        assert all(isinstance(name, str) for name in detail["changed_fields"])
        assert set(detail["changed_fields"]) <= set(LEAD_FIELDS)
    if "turn_count" in detail:
        assert isinstance(detail["turn_count"], int)
    for key in ("next_at", "delivered_at"):
        if key in detail:
            assert datetime.fromisoformat(detail[key]).utcoffset() is not None


@pytest.mark.parametrize("event", [_captured(), _updated(), _ended(), _delivered(), _scheduled(), _message_delivered()],
                         ids=lambda e: e.detail_type)
def test_a_consumer_can_read_a_detail_back_into_its_event(event: Event) -> None:
    detail = json.loads(json.dumps(event.detail()))

    assert EVENT_TYPES[event.detail_type].model_validate(detail) == event


@pytest.mark.parametrize("event", [_captured(), _updated(), _ended(), _delivered(), _scheduled(), _message_delivered()],
                         ids=lambda e: e.detail_type)
def test_the_eventbridge_entry(event: Event) -> None:
    entry = EventPublisher(client=None, bus_name="openbrain-events").entry(event)  # type: ignore[arg-type]

    assert entry == {
        "Source": "openbrain",
        "DetailType": event.detail_type,
        "Detail": json.dumps(event.detail(), separators=(",", ":")),
        "EventBusName": "openbrain-events",
        "Time": AT,
    }
    assert EVENT_SOURCE == "openbrain"


# --- idempotency keys -------------------------------------------------------------------------------------


def test_the_idempotency_key_is_the_same_for_a_redelivered_tool_call() -> None:
    first = _captured(event_id=new_id(), occurred_at=datetime.now(UTC))
    again = _captured(event_id=new_id(), occurred_at=datetime.now(UTC))

    assert first.event_id != again.event_id
    assert first.idempotency_key == again.idempotency_key


def test_the_idempotency_key_is_documented_as_a_hash_of_type_ids_and_tool_call() -> None:
    basis = f"lead.captured.v1|acme|{SESSION_ID}|{LEAD_ID}|call_1"

    assert _captured().idempotency_key == hashlib.sha256(basis.encode()).hexdigest()[:32]


@pytest.mark.parametrize(
    "other",
    [
        _captured(tool_call_id="call_other"),
        _captured(lead_id="01JOTHERLEADOTHERLEAD00000"),
        _captured(session_id="01JOTHERSESSIONOTHERSESSIO"),
        _captured(client_id="other-client"),
        _updated(tool_call_id="call_1"),
    ],
    ids=["tool call", "lead", "session", "client", "detail type"],
)
def test_the_idempotency_key_differs_for_anything_else(other: Event) -> None:
    assert other.idempotency_key != _captured().idempotency_key


def test_an_explicit_idempotency_key_is_kept() -> None:
    assert _captured(idempotency_key="from-the-caller").idempotency_key == "from-the-caller"


# --- no personal data, no secrets -------------------------------------------------------------------------

PERSON = {
    "full_name": "Ada King Lovelace",
    "email": "ada.lovelace@example.com",
    "phone": "+44 20 7946 0958",
    "date_of_birth": "1815-12-10",
    "state_of_residence": "Surrey",
    "medications": ["laudanum"],
    "notes": "prefers letters",
}


@pytest.mark.integration
def test_events_from_real_tool_calls_carry_no_personal_data_or_secrets(backend: Backend) -> None:
    # given: a publisher that keeps the exact entries it sends
    sent: list[dict[str, Any]] = []

    class KeepingClient:
        def put_events(self, *, Entries: list[dict[str, Any]]) -> dict[str, Any]:
            sent.extend(Entries)
            return backend.client("events").put_events(Entries=Entries)

    publisher = EventPublisher(KeepingClient(), "openbrain-events")
    context = ToolContext(client_id="acme", session_id=new_id())

    # when: a lead is captured, updated and the conversation ends, and the events go through an outbox
    capture_lead(context, "call_1", **PERSON)
    capture_lead(context, "call_2", phone="+1 555 010 9999", first_name="Augusta")
    end_conversation(context, "call_3")
    outbox = to_outbox(context.events)
    publisher.publish(from_outbox(outbox))

    # then
    assert [e["DetailType"] for e in sent] == ["lead.captured.v1", "lead.updated.v1", "conversation.ended.v1"]
    text = json.dumps([sent, outbox], default=str, ensure_ascii=False)
    personal = ["Ada King Lovelace", "ada.lovelace@example.com", "+44 20 7946 0958", "1815-12-10", "Surrey",
                "laudanum", "prefers letters", "+1 555 010 9999", "Augusta", "Lovelace"]
    for value in personal:
        assert value not in text, value
    for entry in sent:
        for key in json.loads(entry["Detail"]):
            assert not re.search(r"secret|password|token|api_?key|credential|email|phone|name", key), key


# --- publishing -------------------------------------------------------------------------------------------


class RejectingEventsClient:
    """Answers `put_events` as EventBridge does when it refuses some entries (HTTP 200, FailedEntryCount>0)."""

    def __init__(self) -> None:
        self.calls = 0

    def put_events(self, *, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls += 1
        return {
            "FailedEntryCount": 1,
            "Entries": [{"ErrorCode": "InternalFailure", "ErrorMessage": "arn:aws:events:secret-ish detail"}]
            + [{"EventId": new_id()} for _ in Entries[1:]],
        }


def test_publish_raises_when_eventbridge_rejects_an_entry() -> None:
    publisher = EventPublisher(RejectingEventsClient(), "openbrain-events")

    with pytest.raises(UpstreamError) as caught:
        publisher.publish([_captured(), _ended()])

    assert caught.value.message == "the event bus rejected 1 of 2 events"
    assert "arn:aws" not in caught.value.message


def test_publish_sends_nothing_for_no_events() -> None:
    client = RejectingEventsClient()

    EventPublisher(client, "openbrain-events").publish([])

    assert client.calls == 0


@pytest.mark.integration
def test_publish_raises_when_the_bus_does_not_exist(backend: Backend) -> None:
    publisher = EventPublisher(backend.client("events"), "no-such-bus")

    with pytest.raises(UpstreamError) as caught:
        publisher.publish([_captured()])

    assert caught.value.message == "the event bus is unavailable"
    assert caught.value.code == "upstream_error"
    assert "ResourceNotFound" in type(caught.value.__cause__).__name__


def test_an_outbox_keeps_every_event_as_it_was_made() -> None:
    events = [_captured(), _ended()]

    stored = json.loads(json.dumps(to_outbox(events)))  # as the session item holds it

    assert from_outbox(stored) == events
    assert [entry["type"] for entry in stored] == ["lead.captured.v1", "conversation.ended.v1"]
    assert from_outbox(None) == []


def test_publish_sends_at_most_ten_entries_per_call(backend: Backend) -> None:
    calls: list[int] = []

    class CountingClient:
        def put_events(self, *, Entries: list[dict[str, Any]]) -> dict[str, Any]:
            calls.append(len(Entries))
            return backend.client("events").put_events(Entries=Entries)

    EventPublisher(CountingClient(), "openbrain-events").publish([_captured()] * 23)

    assert calls == [10, 10, 3]



# --- delivery through the embedded EventBridge to the targets' queues --------------------------------------


def _receive(backend: Backend, queue: str) -> list[dict[str, Any]]:
    response = backend.client("sqs").receive_message(
        QueueUrl=backend.queue_urls[queue], MaxNumberOfMessages=10, WaitTimeSeconds=0
    )
    return [json.loads(message["Body"]) for message in response.get("Messages", [])]


@pytest.mark.integration
def test_lead_events_reach_the_lead_webhook_queue(backend: Backend) -> None:
    # given
    captured, updated = _captured(event_id=new_id()), _updated(event_id=new_id())

    # when
    backend.events.publish([captured, updated])

    # then
    messages = sorted(_receive(backend, WEBHOOK_QUEUE), key=lambda m: m["detail-type"])
    assert [(m["source"], m["detail-type"]) for m in messages] == [
        ("openbrain", "lead.captured.v1"),
        ("openbrain", "lead.updated.v1"),
    ]
    assert messages[0]["detail"] == captured.detail()
    assert messages[1]["detail"] == updated.detail()
    assert _receive(backend, WEBHOOK_QUEUE + "-dlq") == []


@pytest.mark.integration
def test_conversation_ended_does_not_reach_the_lead_webhook_queue(backend: Backend) -> None:
    backend.events.publish([_ended(event_id=new_id())])

    assert _receive(backend, WEBHOOK_QUEUE) == []


@pytest.mark.integration
def test_a_lead_captured_in_a_turn_reaches_the_webhook_queue(backend: Backend) -> None:
    from openbrain.conversation.chat import ChatMessage, chat

    response = chat(ChatMessage(message="ada@example.com, thanks, goodbye"))

    [captured, ended] = response.events
    assert (captured["type"], ended["type"]) == ("lead.captured.v1", "conversation.ended.v1")
    [message] = _receive(backend, WEBHOOK_QUEUE)
    assert message["detail-type"] == "lead.captured.v1"
    assert message["detail"]["event_id"] == captured["event_id"]
