"""ChatSession (openbrain/storage/orm/chat_session.py): fresh ULID ids, TTL, expired items read as missing."""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import pytest
from ulid import ULID

from openbrain.aws.backend import Backend
from openbrain.core.clock import utcnow
from openbrain.core.errors import NotFoundError
from openbrain.storage.orm import ChatSession
from openbrain.storage.orm.chat_session import ITEM_SIZE_TARGET, MAX_RECENT_EVENTS

pytestmark = pytest.mark.integration


def raw_item(backend: Backend, session: ChatSession) -> dict:
    """The item exactly as DynamoDB holds it (no model, no expiry filter)."""
    response = backend.client("dynamodb").get_item(
        TableName=ChatSession.Meta.table_name,
        Key={"client_id": {"S": session.client_id}, "session_id": {"S": session.session_id}},
        ConsistentRead=True,
    )
    return response.get("Item", {})


def test_every_instance_gets_a_fresh_ulid_session_id_that_sorts_by_creation() -> None:
    sessions = [ChatSession("acme", profile_name="default") for _ in range(500)]
    ids = [session.session_id for session in sessions]

    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
    assert all(str(ULID.from_str(session_id)) == session_id for session_id in ids)


def test_a_session_read_back_keeps_its_id(backend: Backend) -> None:
    session = ChatSession("acme", profile_name="default")
    session.save()

    assert ChatSession.get("acme", session.session_id).session_id == session.session_id


def test_get_all_lists_sessions_oldest_first(backend: Backend) -> None:
    created = []
    for _ in range(12):
        session = ChatSession("acme", profile_name="default")
        session.save()
        created.append(session.session_id)

    assert [s.session_id for s in ChatSession.get_all("acme", page_size=5)] == created


def test_refresh_ttl_sets_expiry_retention_from_now(backend: Backend) -> None:
    # given
    session = ChatSession("acme", profile_name="default")
    assert session.expires_at is None

    # when
    before = utcnow()
    session.refresh_ttl(timedelta(days=30))
    session.save()

    # then
    stored = ChatSession.get("acme", session.session_id)
    assert before + timedelta(days=30) - timedelta(seconds=1) <= stored.expires_at <= utcnow() + timedelta(days=30)
    assert not stored.expired


def test_expires_at_is_stored_as_epoch_seconds_for_dynamodb_ttl(backend: Backend) -> None:
    session = ChatSession("acme", profile_name="default")
    session.refresh_ttl(timedelta(hours=1))
    session.save()

    stored = raw_item(backend, session)["expires_at"]

    assert set(stored) == {"N"}
    assert abs(int(stored["N"]) - (utcnow() + timedelta(hours=1)).timestamp()) < 5


def test_refresh_ttl_moves_expiry_forward_on_a_later_turn(backend: Backend) -> None:
    session = ChatSession("acme", profile_name="default")
    session.refresh_ttl(timedelta(seconds=60))
    session.save()
    first = session.expires_at

    session.refresh_ttl(timedelta(days=1))
    session.save()

    assert ChatSession.get("acme", session.session_id).expires_at > first


def test_an_expired_session_is_missing_to_get_and_load_before_dynamodb_deletes_it(backend: Backend) -> None:
    # given a session whose expiry has passed (DynamoDB's TTL sweeper has not run yet)
    session = ChatSession("acme", profile_name="default")
    session.expires_at = utcnow() - timedelta(seconds=1)
    session.save()
    assert raw_item(backend, session), "the item is still in the table"

    # when / then
    with pytest.raises(NotFoundError, match=session.session_id):
        ChatSession.get("acme", session.session_id)
    with pytest.raises(NotFoundError):
        ChatSession.load("acme", session.session_id)


def test_get_all_skips_expired_sessions(backend: Backend) -> None:
    # given
    live = ChatSession("acme", profile_name="default")
    live.refresh_ttl(timedelta(days=1))
    live.save()
    expired = ChatSession("acme", profile_name="default")
    expired.expires_at = utcnow() - timedelta(minutes=5)
    expired.save()
    no_ttl = ChatSession("acme", profile_name="default")
    no_ttl.save()

    # when
    listed = [s.session_id for s in ChatSession.get_all("acme")]

    # then
    assert listed == [live.session_id, no_ttl.session_id]


def test_the_session_table_has_ttl_enabled_on_expires_at(backend: Backend) -> None:
    description = backend.client("dynamodb").describe_time_to_live(TableName=ChatSession.Meta.table_name)

    assert description["TimeToLiveDescription"]["TimeToLiveStatus"] == "ENABLED"
    assert description["TimeToLiveDescription"]["AttributeName"] == "expires_at"


def test_record_events_keeps_only_the_latest_events(backend: Backend) -> None:
    session = ChatSession("acme", profile_name="default")

    for n in range(MAX_RECENT_EVENTS + 7):
        session.record_events([{"type": "lead.captured.v1", "event_id": str(n)}])
    session.save()

    stored = ChatSession.get("acme", session.session_id).recent_events
    assert [e["event_id"] for e in stored] == [str(n) for n in range(7, MAX_RECENT_EVENTS + 7)]


def stored_bytes(item: dict[str, Any]) -> int:
    """DynamoDB's size of a flat item (only S, B and N attributes, as a session's): each attribute's name in
    UTF-8 plus its value, where S counts its UTF-8 bytes, B its raw bytes, and N at most 21 bytes."""
    value_size = {"S": lambda v: len(v.encode()), "B": len, "N": lambda v: 21}
    return sum(len(name.encode()) + value_size[kind](value) for name, attr in item.items()
               for kind, value in attr.items())


TEXTS = {
    "ascii": "Answer politely and in detail. " * 700,
    "japanese": "日本語で丁寧に答えてください。" * 1400,
    "emoji": "🙂🚀" * 10_000,
}


@pytest.mark.parametrize("text", TEXTS.values(), ids=TEXTS.keys())
def test_memory_budget_keeps_the_whole_item_under_the_size_target(backend: Backend, text: str) -> None:
    # given a session carrying the largest snapshot a valid profile gives, a full context and 50 events
    session = ChatSession(
        "acme", profile_name="default",
        config_snapshot={"system_message": text[:20_000], "icebreaker": text[:20_000], "tools": ["calculator"]},
        context={"page": text[:2_500]},
    )
    session.record_events([{"type": "lead.captured.v1", "event_id": "E" * 26, "object_id": "L" * 26}] * 50)
    session.refresh_ttl(timedelta(days=30))

    # when memory takes its whole budget with incompressible bytes
    session.memory = os.urandom(session.memory_budget(280_000))
    session.save()

    # then the stored item is under the target, and so far under DynamoDB's 400 KB
    assert stored_bytes(raw_item(backend, session)) < ITEM_SIZE_TARGET <= 350_000


def test_memory_budget_is_the_policy_budget_when_the_rest_of_the_item_is_small() -> None:
    session = ChatSession("acme", profile_name="default", config_snapshot={"model": "offline"})

    assert session.memory_budget(200_000) == 200_000


def test_json_attributes_store_non_ascii_text_as_utf8_not_escapes(backend: Backend) -> None:
    # given
    session = ChatSession("acme", profile_name="default", config_snapshot={"system_message": "日本語"},
                          context={"city": "Zürich"})

    # when
    session.save()

    # then: one UTF-8 character is at most 4 bytes, never a 6- or 12-byte \uXXXX escape
    item = raw_item(backend, session)
    assert "日本語" in item["config_snapshot"]["S"]
    assert "Zürich" in item["context"]["S"]
    stored = ChatSession.get("acme", session.session_id)
    assert (stored.config_snapshot, stored.context) == ({"system_message": "日本語"}, {"city": "Zürich"})
