"""capture_lead: records the session's Lead to create, then to update, and the event announcing it; the turn's
commit writes and publishes them (tests/conversation/test_outbox.py), the tool itself never does."""

from __future__ import annotations

import pytest

from openbrain.conversation.tools.context import ToolContext
from openbrain.conversation.tools.lead import MAX_FIELD_CHARS, capture_lead
from openbrain.domain.events import LeadCaptured, LeadUpdated
from openbrain.storage.orm.lead import Lead

pytestmark = pytest.mark.integration

SAVED = "Saved the contact details; the team will follow up."


def test_capture_lead_records_a_new_lead_and_its_event_and_writes_nothing(context: ToolContext) -> None:
    # when
    reply = capture_lead(context, "call_1", full_name="Ada Lovelace", email="Ada@Example.com ")

    # then: the lead to create is recorded for this client and session
    assert reply == SAVED
    lead = context.lead
    assert lead is not None
    assert (context.lead_id, lead.client_id, lead.version) == (lead.lead_id, context.client_id, None)
    names = (lead.full_name, lead.first_name, lead.middle_name, lead.last_name)
    assert names == ("Ada Lovelace", "Ada", None, "Lovelace")
    assert lead.email == "ada@example.com"
    assert lead.phone is None
    assert lead.session_id == context.session_id
    assert lead.status == "new"

    # and one lead.captured.v1 event names it; nothing is stored or published before the turn commits
    assert len(context.events) == 1
    event = context.events[0]
    assert isinstance(event, LeadCaptured)
    assert (event.lead_id, event.tool_call_id, event.session_id) == (lead.lead_id, "call_1", context.session_id)
    assert Lead.get_all(context.client_id) == []


def test_capture_lead_accepts_a_phone_number_alone(context: ToolContext) -> None:
    reply = capture_lead(context, "call_1", phone="+1 (555) 010-9999")

    assert reply == SAVED
    lead = context.lead
    assert lead is not None
    assert (lead.phone, lead.email) == ("+1 (555) 010-9999", None)


def test_capture_lead_needs_an_email_or_a_phone(context: ToolContext) -> None:
    reply = capture_lead(context, "call_1", full_name="Ada Lovelace", notes="call me maybe")

    assert reply == "Not saved: I need an email address or a phone number. Ask the person for one."
    assert context.lead_id is None
    assert context.lead is None
    assert context.events == []


@pytest.mark.parametrize("email", ["ada", "ada@", "@example.com", "ada@example", "ada at example.com",
                                   "a da@example.com", "ada@@example.com", "ada@example.c0m"])
def test_capture_lead_refuses_a_malformed_email(context: ToolContext, email: str) -> None:
    reply = capture_lead(context, "call_1", email=email)

    assert reply == f"{email.lower()!r} is not a valid email address; ask for it again."
    assert context.lead is None
    assert context.events == []


@pytest.mark.parametrize("phone", ["12345", "call me", "555-CALL-NOW", "+44 20 7946 0958 ext 12", "1" * 30])
def test_capture_lead_refuses_a_malformed_phone(context: ToolContext, phone: str) -> None:
    reply = capture_lead(context, "call_1", phone=phone)

    assert reply == f"{phone!r} is not a valid phone number; ask for it again."
    assert context.lead is None


@pytest.mark.parametrize("phone", ["-------", "(((  )))", "... ..."])
def test_capture_lead_refuses_a_phone_number_without_digits(context: ToolContext, phone: str) -> None:
    reply = capture_lead(context, "call_1", phone=phone)

    assert reply == f"{phone!r} is not a valid phone number; ask for it again."
    assert context.lead is None


def test_capture_lead_refuses_a_bad_email_even_with_a_good_phone(context: ToolContext) -> None:
    reply = capture_lead(context, "call_1", email="nope", phone="+44 20 7946 0958")

    assert reply == "'nope' is not a valid email address; ask for it again."
    assert context.lead is None


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

    lead = context.lead
    assert lead is not None
    assert lead.full_name == full_name.strip()
    assert (lead.first_name, lead.middle_name, lead.last_name) == (first, middle, last)


def test_capture_lead_keeps_explicit_name_parts(context: ToolContext) -> None:
    capture_lead(context, "call_1", full_name="Ada Lovelace", first_name="Augusta", email="ada@example.com")

    lead = context.lead
    assert lead is not None
    assert (lead.full_name, lead.first_name, lead.last_name) == ("Ada Lovelace", "Augusta", None)


def test_capture_lead_joins_name_parts_into_a_full_name(context: ToolContext) -> None:
    capture_lead(context, "call_1", first_name="Ada", middle_name="King", last_name="Lovelace", phone="5550109999")

    assert context.lead is not None
    assert context.lead.full_name == "Ada King Lovelace"


def test_capture_lead_trims_and_bounds_every_field(context: ToolContext) -> None:
    capture_lead(
        context, "call_1", email="ada@example.com", notes="x" * (MAX_FIELD_CHARS + 100),
        medications=["  aspirin ", "", "   "], state_of_residence="  ",
    )

    lead = context.lead
    assert lead is not None
    assert lead.notes == "x" * MAX_FIELD_CHARS
    assert lead.medications == ["aspirin"]
    assert lead.state_of_residence is None


def test_a_second_call_in_the_same_turn_changes_the_lead_it_records(context: ToolContext) -> None:
    # given
    capture_lead(context, "call_1", full_name="Ada Lovelace", email="ada@example.com")
    lead_id = context.lead_id

    # when
    reply = capture_lead(context, "call_2", email="ada@example.com", phone="+44 20 7946 0958")

    # then: one lead to create, now with a phone, and both events
    assert reply == "Updated the contact details (phone); the team will follow up."
    lead = context.lead
    assert lead is not None
    assert (lead.lead_id, lead.email, lead.phone, lead.full_name, lead.version) == (
        lead_id, "ada@example.com", "+44 20 7946 0958", "Ada Lovelace", None
    )
    assert [type(e) for e in context.events] == [LeadCaptured, LeadUpdated]


def test_a_later_turn_updates_the_stored_lead_by_the_fields_it_changed(context: ToolContext) -> None:
    # given: a lead an earlier turn committed
    stored = Lead(context.client_id, session_id=context.session_id, full_name="Ada Lovelace", email="ada@example.com")
    stored.save()
    context.lead_id = stored.lead_id

    # when
    reply = capture_lead(context, "call_2", email="ada@example.com", phone="+44 20 7946 0958")

    # then: the stored lead, changed in memory, and only the changed field to write
    assert reply == "Updated the contact details (phone); the team will follow up."
    assert context.lead is not None
    assert (context.lead.lead_id, context.lead.phone, context.lead.version) == (stored.lead_id, "+44 20 7946 0958", 1)
    assert context.lead_changes == {"phone"}
    assert Lead.get(context.client_id, stored.lead_id).phone is None

    # and a lead.updated.v1 event lists what changed (names only)
    [updated] = context.events
    assert isinstance(updated, LeadUpdated)
    assert (updated.lead_id, updated.tool_call_id, updated.changed_fields) == (stored.lead_id, "call_2", ["phone"])


def test_an_update_lists_every_changed_field_in_order(context: ToolContext) -> None:
    capture_lead(context, "call_1", full_name="Ada Lovelace", email="ada@example.com")

    reply = capture_lead(context, "call_2", full_name="Ada King Lovelace", email="ada@lovelace.org")

    assert reply == "Updated the contact details (email, full_name, middle_name); the team will follow up."
    updated = context.events[-1]
    assert isinstance(updated, LeadUpdated)
    assert updated.changed_fields == ["email", "full_name", "middle_name"]
    lead = context.lead
    assert lead is not None
    assert (lead.email, lead.middle_name) == ("ada@lovelace.org", "King")


def test_an_unchanged_call_records_nothing(context: ToolContext) -> None:
    # given: a stored lead
    stored = Lead(context.client_id, session_id=context.session_id, full_name="Ada Lovelace", first_name="Ada",
                  last_name="Lovelace", email="ada@example.com")
    stored.save()
    context.lead_id = stored.lead_id

    # when: the same details, differently spaced and cased
    reply = capture_lead(context, "call_2", full_name=" Ada Lovelace", email="ADA@example.com ")

    # then
    assert reply == "Those details were already saved; nothing changed."
    assert (context.lead, context.lead_changes, context.events) == (None, set(), [])


def test_a_lead_that_has_vanished_is_captured_afresh(context: ToolContext) -> None:
    # given: the session remembers a lead that was deleted since
    context.lead_id = "01JLEADLEADLEADLEADLEAD000"

    # when
    reply = capture_lead(context, "call_2", email="ada@example.com")

    # then
    assert reply == SAVED
    assert context.lead is not None
    assert context.lead_id == context.lead.lead_id != "01JLEADLEADLEADLEADLEAD000"
    assert isinstance(context.events[-1], LeadCaptured)
