"""Sessions expire: past its TTL a session reads as missing, whether or not DynamoDB has swept it yet."""

from __future__ import annotations

from datetime import timedelta

import pytest
from support.conformance import Target

from openbrain.aws.resources import SESSION_TTL_ATTRIBUTE
from openbrain.core.clock import utcnow
from openbrain.core.errors import NotFoundError
from openbrain.storage.orm import ChatSession
from openbrain.storage.stores import Stores

pytestmark = pytest.mark.integration


def test_an_expired_session_reads_as_missing_and_is_not_listed(stores: Stores, client_id: str) -> None:
    # given
    live = ChatSession(client_id, profile_name="live")
    live.refresh_ttl(timedelta(days=1))
    expired = ChatSession(client_id, profile_name="expired")
    expired.expires_at = utcnow() - timedelta(seconds=1)
    for session in (live, expired):
        stores.sessions.save(session)

    # then
    with pytest.raises(NotFoundError):
        stores.sessions.get(client_id, expired.session_id)
    assert stores.sessions.get(client_id, live.session_id).profile_name == "live"
    assert [s.session_id for s in stores.sessions.of_client(client_id)] == [live.session_id]
    assert [s.session_id for s in stores.sessions.of_client(client_id, newest_first=True, limit=1)] == [
        live.session_id]


def test_the_session_table_lets_dynamodb_sweep_expired_sessions(target: Target) -> None:
    if not target.ttl:
        pytest.skip(f"{target.name} does not implement DynamoDB's TTL API (DescribeTimeToLive)")

    dynamodb = ChatSession._get_connection().connection.client
    ttl = dynamodb.describe_time_to_live(TableName=ChatSession.Meta.table_name)["TimeToLiveDescription"]

    assert ttl["TimeToLiveStatus"] in ("ENABLED", "ENABLING")
    assert ttl["AttributeName"] == SESSION_TTL_ATTRIBUTE


def test_a_users_sessions_are_listed_last_updated_first_without_others_or_expired_ones(stores: Stores,
                                                                                         client_id: str) -> None:
    # given: ada's three sessions (one expired), bob's, an unbound one, and ada's at another client
    made = {}
    for name, user, client, ttl in (("first", "ada", client_id, 1), ("bob", "bob", client_id, 1),
                                    ("nobody", None, client_id, 1), ("gone", "ada", client_id, -1),
                                    ("elsewhere", "ada", f"{client_id}-other", 1), ("second", "ada", client_id, 1)):
        session = ChatSession(client, profile_name=name)
        session.bind_user(user)
        session.expires_at = utcnow() + timedelta(days=ttl)
        stores.sessions.save(session)
        made[name] = session
    made["first"].turn_count = 3
    stores.sessions.save(made["first"])  # updated last: listed first

    # then
    listed = stores.sessions.of_user(client_id, "ada")
    assert [s.session_id for s in listed] == [made["first"].session_id, made["second"].session_id]
    assert (listed[0].profile_name, int(listed[0].turn_count), listed[0].end_user_id) == ("first", 3, "ada")
    assert [s.session_id for s in stores.sessions.of_user(client_id, "ada", limit=1)] == [made["first"].session_id]
    assert stores.sessions.of_user(client_id, "ada#x") == []
    # a user id may hold '#': the client id never does, so keys cannot collide
    odd = ChatSession(client_id, profile_name="odd")
    odd.bind_user("bob#1")
    stores.sessions.save(odd)
    assert [s.session_id for s in stores.sessions.of_user(client_id, "bob#1")] == [odd.session_id]
    assert [s.session_id for s in stores.sessions.of_user(client_id, "bob")] == [made["bob"].session_id]
