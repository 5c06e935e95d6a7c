"""capture_lead: creates, then updates, the session's Lead and announces it on the event bus."""

from __future__ import annotations

import json
from typing import Any

import pytest

from openbrain.aws.backend import Backend
from openbrain.conversation.tools.context import ToolContext
from openbrain.conversation.tools.lead import MAX_FIELD_CHARS, capture_lead
from openbrain.domain.events import LeadCaptured, LeadUpdated
from openbrain.storage.orm.lead import Lead

pytestmark = pytest.mark.integration

SAVED = "Saved the contact details; the team will follow up."


def _webhook_messages(backend: Backend) -> list[dict[str, Any]]:
    sqs = backend.client("sqs")
    response = sqs.receive_message(
        QueueUrl=backend.queue_urls["openbrain-lead-webhook"], MaxNumberOfMessages=10, WaitTimeSeconds=0
    )
    return [json.loads(message["Body"]) for message in response.get("Messages", [])]


def test_capture_lead_saves_a_new_lead_and_announces_it(context: ToolContext, backend: Backend) -> None:
    # when
    reply = capture_lead(context, "call_1", full_name="Ada Lovelace", email="Ada@Example.com ")

    # then: the lead is stored for this client and session
    assert reply == SAVED
    assert context.lead_id is not None
    lead = Lead.get(context.client_id, context.lead_id)
    names = (lead.full_name, lead.first_name, lead.middle_name, lead.last_name)
    assert names == ("Ada Lovelace", "Ada", None, "Lovelace")
    assert lead.email == "ada@example.com"
    assert lead.phone is None
    assert lead.session_id == context.session_id
    assert lead.status == "new"

    # and one lead.captured.v1 event names it
    assert len(context.events) == 1
    event = context.events[0]
    assert isinstance(event, LeadCaptured)
    assert (event.lead_id, event.tool_call_id, event.session_id) == (lead.lead_id, "call_1", context.session_id)
    [delivered] = _webhook_messages(backend)
    assert delivered["detail-type"] == "lead.captured.v1"
    assert delivered["detail"]["lead_id"] == lead.lead_id


def test_capture_lead_accepts_a_phone_number_alone(context: ToolContext) -> None:
    reply = capture_lead(context, "call_1", phone="+1 (555) 010-9999")

    assert reply == SAVED
    lead = Lead.get(context.client_id, context.lead_id)
    assert (lead.phone, lead.email) == ("+1 (555) 010-9999", None)


def test_capture_lead_needs_an_email_or_a_phone(context: ToolContext) -> None:
    reply = capture_lead(context, "call_1", full_name="Ada Lovelace", notes="call me maybe")

    assert reply == "Not saved: I need an email address or a phone number. Ask the person for one."
    assert context.lead_id is None
    assert Lead.get_all(context.client_id) == []
    assert context.events == []


@pytest.mark.parametrize("email", ["ada", "ada@", "@example.com", "ada@example", "ada at example.com",
                                   "a da@example.com", "ada@@example.com", "ada@example.c0m"])
def test_capture_lead_refuses_a_malformed_email(context: ToolContext, email: str) -> None:
    reply = capture_lead(context, "call_1", email=email)

    assert reply == f"{email.lower()!r} is not a valid email address; ask for it again."
    assert Lead.get_all(context.client_id) == []
    assert context.events == []


@pytest.mark.parametrize("phone", ["12345", "call me", "555-CALL-NOW", "+44 20 7946 0958 ext 12", "1" * 30])
def test_capture_lead_refuses_a_malformed_phone(context: ToolContext, phone: str) -> None:
    reply = capture_lead(context, "call_1", phone=phone)

    assert reply == f"{phone!r} is not a valid phone number; ask for it again."
    assert Lead.get_all(context.client_id) == []


@pytest.mark.parametrize("phone", ["-------", "(((  )))", "... ..."])
def test_capture_lead_refuses_a_phone_number_without_digits(context: ToolContext, phone: str) -> None:
    reply = capture_lead(context, "call_1", phone=phone)

    assert reply == f"{phone!r} is not a valid phone number; ask for it again."
    assert Lead.get_all(context.client_id) == []


def test_capture_lead_refuses_a_bad_email_even_with_a_good_phone(context: ToolContext) -> None:
    reply = capture_lead(context, "call_1", email="nope", phone="+44 20 7946 0958")

    assert reply == "'nope' is not a valid email address; ask for it again."
    assert Lead.get_all(context.client_id) == []


@pytest.mark.parametrize(
    ("full_name", "first", "middle", "last"),
    [
        ("Ada Lovelace", "Ada", None, "Lovelace"),
        ("Augusta Ada King Lovelace", "Augusta", "Ada King", "Lovelace"),
        ("  Grace   Hopper ", "Grace", None, "Hopper"),
        ("Cher", None, None, None),
    ],
)
def test_capture_lead_splits_a_full_name(
    context: ToolContext, full_name: str, first: str | None, middle: str | None, last: str | None
) -> None:
    capture_lead(context, "call_1", full_name=full_name, email="someone@example.com")

    lead = Lead.get(context.client_id, context.lead_id)
    assert lead.full_name == full_name.strip()
    assert (lead.first_name, lead.middle_name, lead.last_name) == (first, middle, last)


def test_capture_lead_keeps_explicit_name_parts(context: ToolContext) -> None:
    capture_lead(context, "call_1", full_name="Ada Lovelace", first_name="Augusta", email="ada@example.com")

    lead = Lead.get(context.client_id, context.lead_id)
    assert (lead.full_name, lead.first_name, lead.last_name) == ("Ada Lovelace", "Augusta", None)


def test_capture_lead_joins_name_parts_into_a_full_name(context: ToolContext) -> None:
    capture_lead(context, "call_1", first_name="Ada", middle_name="King", last_name="Lovelace", phone="5550109999")

    assert Lead.get(context.client_id, context.lead_id).full_name == "Ada King Lovelace"


def test_capture_lead_trims_and_bounds_every_field(context: ToolContext) -> None:
    capture_lead(
        context, "call_1", email="ada@example.com", notes="x" * (MAX_FIELD_CHARS + 100),
        medications=["  aspirin ", "", "   "], state_of_residence="  ",
    )

    lead = Lead.get(context.client_id, context.lead_id)
    assert lead.notes == "x" * MAX_FIELD_CHARS
    assert lead.medications == ["aspirin"]
    assert lead.state_of_residence is None


def test_a_second_call_updates_the_same_lead(context: ToolContext, backend: Backend) -> None:
    # given
    capture_lead(context, "call_1", full_name="Ada Lovelace", email="ada@example.com")
    lead_id = context.lead_id

    # when
    reply = capture_lead(context, "call_2", email="ada@example.com", phone="+44 20 7946 0958")

    # then: one lead, now with a phone
    assert reply == "Updated the contact details (phone); the team will follow up."
    assert context.lead_id == lead_id
    [lead] = Lead.get_all(context.client_id)
    assert (lead.lead_id, lead.email, lead.phone, lead.full_name) == (
        lead_id, "ada@example.com", "+44 20 7946 0958", "Ada Lovelace"
    )

    # and a lead.updated.v1 event lists what changed (names only)
    updated = context.events[-1]
    assert isinstance(updated, LeadUpdated)
    assert (updated.lead_id, updated.tool_call_id, updated.changed_fields) == (lead_id, "call_2", ["phone"])
    assert [m["detail-type"] for m in _webhook_messages(backend)] == ["lead.captured.v1", "lead.updated.v1"]


def test_an_update_lists_every_changed_field_in_order(context: ToolContext) -> None:
    capture_lead(context, "call_1", full_name="Ada Lovelace", email="ada@example.com")

    reply = capture_lead(context, "call_2", full_name="Ada King Lovelace", email="ada@lovelace.org")

    assert reply == "Updated the contact details (email, full_name, middle_name); the team will follow up."
    updated = context.events[-1]
    assert isinstance(updated, LeadUpdated)
    assert updated.changed_fields == ["email", "full_name", "middle_name"]
    lead = Lead.get(context.client_id, context.lead_id)
    assert (lead.email, lead.middle_name) == ("ada@lovelace.org", "King")


def test_an_unchanged_call_saves_and_announces_nothing(context: ToolContext, backend: Backend) -> None:
    # given
    capture_lead(context, "call_1", full_name="Ada Lovelace", email="ada@example.com")
    version = Lead.get(context.client_id, context.lead_id).version
    _webhook_messages(backend)  # drain the capture

    # when: the same details, differently spaced and cased
    reply = capture_lead(context, "call_2", full_name=" Ada Lovelace", email="ADA@example.com ")

    # then
    assert reply == "Those details were already saved; nothing changed."
    assert len(context.events) == 1
    assert Lead.get(context.client_id, context.lead_id).version == version
    assert _webhook_messages(backend) == []


def test_a_lead_that_has_vanished_is_captured_afresh(context: ToolContext) -> None:
    # given: the session remembers a lead that was deleted since
    capture_lead(context, "call_1", email="ada@example.com")
    old_id = context.lead_id
    Lead.get(context.client_id, old_id).delete()

    # when
    reply = capture_lead(context, "call_2", email="ada@example.com")

    # then
    assert reply == SAVED
    assert context.lead_id != old_id
    assert isinstance(context.events[-1], LeadCaptured)


def test_capture_lead_saves_the_lead_even_when_the_bus_fails(unreachable_bus_context: ToolContext) -> None:
    context = unreachable_bus_context

    reply = capture_lead(context, "call_1", full_name="Ada Lovelace", email="ada@example.com")

    # the model gets a short outcome, no AWS text
    assert reply == (
        "Saved the contact details, but the team could not be notified right now; they will see it in the lead list."
    )
    for leak in ("ResourceNotFound", "no-such-bus", "does not exist", "Exception", "PutEvents"):
        assert leak not in reply
    assert Lead.get(context.client_id, context.lead_id).email == "ada@example.com"
    assert context.events == []


def test_an_update_is_saved_even_when_the_bus_fails(backend: Backend, unreachable_bus_context: ToolContext) -> None:
    # given: a lead captured while the bus worked
    context = unreachable_bus_context
    working = ToolContext(client_id=context.client_id, session_id=context.session_id, publisher=backend.events)
    capture_lead(working, "call_1", email="ada@example.com")
    context.lead_id = working.lead_id

    # when
    reply = capture_lead(context, "call_2", phone="+44 20 7946 0958")

    # then
    assert reply.startswith("Updated the contact details (phone), but the team could not be notified right now")
    assert Lead.get(context.client_id, context.lead_id).phone == "+44 20 7946 0958"
    assert context.events == []
