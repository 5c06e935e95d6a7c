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
