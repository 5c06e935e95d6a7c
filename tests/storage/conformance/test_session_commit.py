"""A chat turn's commit: the session, its lead and its counters together or not at all, and the session's
outbox."""

from __future__ import annotations

from datetime import timedelta

import pytest
from support.conformance import counting

from openbrain.core.clock import utcnow
from openbrain.core.errors import ConflictError
from openbrain.storage.orm import ChatSession, Lead
from openbrain.storage.stores import Count, Stores

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("transactions")]
LATER = 4_102_444_800  # 2100-01-01: kept for the test's life
OUTBOX = [{"type": "lead.captured.v1", "detail": {"event_id": "01JEVENTEVENTEVENTEVENT000"}}]


def _stored_session(stores: Stores, client_id: str) -> ChatSession:
    session = ChatSession(client_id, profile_name="default")
    stores.sessions.save(session)
    return stores.sessions.get(client_id, session.session_id)


def test_a_commit_writes_the_session_and_a_new_lead_together(stores: Stores, client_id: str) -> None:
    session = _stored_session(stores, client_id)
    lead = Lead(client_id, session_id=session.session_id, email="ada@example.com")
    session.lead_id, session.outbox = lead.lead_id, OUTBOX

    stores.sessions.commit(session, lead)

    stored = stores.sessions.get(client_id, session.session_id)
    assert (stored.lead_id, stored.outbox, stored.version) == (lead.lead_id, OUTBOX, 2)
    assert stores.leads.get(client_id, lead.lead_id).email == "ada@example.com"


def test_a_commit_that_lost_the_race_writes_neither(stores: Stores, client_id: str) -> None:
    # given: another turn saved the session after this copy was read
    mine = _stored_session(stores, client_id)
    theirs = stores.sessions.get(client_id, mine.session_id)
    stores.sessions.save(theirs)
    lead = Lead(client_id, session_id=mine.session_id, email="ada@example.com")
    mine.lead_id = lead.lead_id

    # when / then
    with pytest.raises(ConflictError):
        stores.sessions.commit(mine, lead)
    assert stores.leads.of_client(client_id) == []
    assert stores.sessions.get(client_id, mine.session_id).lead_id is None


def test_a_commit_changes_only_the_named_fields_of_a_stored_lead(stores: Stores, client_id: str) -> None:
    # given: a stored lead the turn read, which a target then marked delivered
    session = _stored_session(stores, client_id)
    lead = Lead(client_id, session_id=session.session_id, email="ada@example.com")
    stores.leads.save(lead)
    read = stores.leads.get(client_id, lead.lead_id)
    delivered = stores.leads.get(client_id, lead.lead_id)
    delivered.status = "delivered"
    stores.leads.save(delivered)

    # when: the turn commits a new phone number on its (older) copy
    read.phone = "+44 20 7946 0958"
    stores.sessions.commit(session, read, {"phone"})

    # then: both changes hold
    stored = stores.leads.get(client_id, lead.lead_id)
    assert (stored.phone, stored.status, stored.email) == ("+44 20 7946 0958", "delivered", "ada@example.com")


def test_an_outbox_is_cleared_only_while_the_session_is_the_version_committed(stores: Stores, client_id: str) -> None:
    session = _stored_session(stores, client_id)
    session.outbox = OUTBOX
    stores.sessions.save(session)
    later = stores.sessions.get(client_id, session.session_id)
    stores.sessions.save(later)  # a later turn committed (and carried the outbox over)

    assert stores.sessions.clear_outbox(session) is False
    assert stores.sessions.get(client_id, session.session_id).outbox == OUTBOX
    assert stores.sessions.clear_outbox(later) is True
    assert stores.sessions.get(client_id, session.session_id).outbox is None


def test_sessions_with_an_outbox_are_found_once_old_enough(stores: Stores, client_id: str) -> None:
    waiting = _stored_session(stores, client_id)
    waiting.outbox = OUTBOX
    stores.sessions.save(waiting)
    _stored_session(stores, client_id)  # no outbox

    def found(before_seconds: int) -> list[str]:
        sessions = stores.sessions.with_outbox(utcnow() + timedelta(seconds=before_seconds))
        return [s.session_id for s in sessions if s.client_id == client_id]

    assert found(-60) == []
    assert found(1) == [waiting.session_id]


def test_sessions_with_a_scheduled_message_are_found_once_it_is_due(stores: Stores, client_id: str) -> None:
    schedules = [{"id": "01KSCHEDULE0000000000000000", "next_at": "2026-12-05T08:00:00+00:00"}]
    waiting = _stored_session(stores, client_id)
    waiting.schedules, waiting.next_schedule_at = schedules, utcnow() + timedelta(minutes=5)
    stores.sessions.save(waiting)
    _stored_session(stores, client_id)  # nothing scheduled

    def found(minutes: int) -> list[tuple[str, object]]:
        sessions = stores.sessions.with_schedules_due(utcnow() + timedelta(minutes=minutes))
        return [(s.session_id, s.schedules) for s in sessions if s.client_id == client_id]

    assert found(4) == []
    assert found(6) == [(waiting.session_id, schedules)]


def test_a_commit_adds_its_counts_in_the_same_write_and_one_that_lost_the_race_adds_none(
        stores: Stores, client_id: str) -> None:
    usage, slot = f"{client_id}#usage", f"{client_id}#slot"
    stores.counters.count([Count(slot, {"inflight": 1}, LATER)])
    mine = _stored_session(stores, client_id)
    theirs = stores.sessions.get(client_id, mine.session_id)
    counts = [Count(usage, {"turns": 1, "input_tokens": 12}, LATER), Count(slot, {"inflight": -1}, LATER)]

    with counting() as made:
        stores.sessions.commit(theirs, counts=counts)
    with pytest.raises(ConflictError):
        stores.sessions.commit(mine, counts=counts)

    assert made == ["TransactWriteItems"]
    stored = stores.counters.read([usage, slot, f"{client_id}#never"])
    assert sorted(stored) == [slot, usage]
    assert (stored[usage].turns, stored[usage].input_tokens, stored[slot].inflight) == (1, 12, 0)
    assert stores.sessions.get(client_id, mine.session_id).version == 2
