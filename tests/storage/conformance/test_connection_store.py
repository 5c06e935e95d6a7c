"""The contract of the WebSocket connection store (api/websocket.py's state across invocations), on every target."""

from __future__ import annotations

from datetime import timedelta

import pytest

from openbrain.core.clock import utcnow
from openbrain.core.errors import NotFoundError
from openbrain.core.ids import new_id
from openbrain.storage.orm import Connection
from openbrain.storage.stores import Stores

pytestmark = pytest.mark.integration


def _open(stores: Stores, client_id: str, **fields: object) -> Connection:
    connection = Connection(f"{client_id}-conn", client_id=client_id, key_kind="widget", **fields)
    stores.connections.save(connection)
    return stores.connections.get(connection.connection_id)


def test_a_connection_is_acknowledged_remembers_its_session_and_is_forgotten(stores: Stores, client_id: str) -> None:
    connection = _open(stores, client_id, origin="https://acme.example")
    assert (connection.client_id, connection.key_kind, connection.acked, connection.session_id) == (
        client_id, "widget", False, None)

    stores.connections.acknowledge(connection)
    assert connection.acked and stores.connections.get(connection.connection_id).acked
    assert stores.connections.start_turn(connection, utcnow() - timedelta(minutes=5))
    stores.connections.finish_turn(connection, "01M8Z68B0RYKWAXR0B87P345A2")
    stored = stores.connections.get(connection.connection_id)
    assert (stored.session_id, stored.turn_started_at) == ("01M8Z68B0RYKWAXR0B87P345A2", None)

    stores.connections.delete(connection.connection_id)
    stores.connections.delete(connection.connection_id)  # gone already: no error
    with pytest.raises(NotFoundError):
        stores.connections.get(connection.connection_id)
    with pytest.raises(NotFoundError):
        stores.connections.acknowledge(connection)
    stores.connections.finish_turn(connection, None)  # a turn ending on a closed connection: nothing to do
    with pytest.raises(NotFoundError):
        stores.connections.get(connection.connection_id)


def test_one_turn_at_a_time_unless_the_one_in_flight_is_stale(stores: Stores, client_id: str) -> None:
    connection = _open(stores, client_id)
    other = stores.connections.get(connection.connection_id)  # another invocation's copy
    assert stores.connections.start_turn(connection, utcnow() - timedelta(minutes=5))
    assert not stores.connections.start_turn(other, utcnow() - timedelta(minutes=5))
    assert stores.connections.start_turn(other, utcnow() + timedelta(seconds=1))  # the first counts as crashed


def test_unacknowledged_connections_older_than_a_time_are_listed(stores: Stores, client_id: str) -> None:
    old = _open(stores, client_id, connected_at=utcnow() - timedelta(seconds=30))
    acked = Connection(f"{client_id}-acked", client_id=client_id, key_kind="server",
                       connected_at=utcnow() - timedelta(seconds=30))
    stores.connections.save(acked)
    stores.connections.acknowledge(acked)
    young = Connection(f"{client_id}-young", client_id=client_id, key_kind="server")
    stores.connections.save(young)

    listed = {c.connection_id for c in stores.connections.unacked_before(utcnow() - timedelta(seconds=10))}
    assert old.connection_id in listed and not {acked.connection_id, young.connection_id} & listed


def test_an_expired_connection_reads_as_missing(stores: Stores, client_id: str) -> None:
    connection = Connection(f"{client_id}-old", client_id=client_id, key_kind="widget",
                            expires_at=utcnow() - timedelta(seconds=1))
    stores.connections.save(connection)
    with pytest.raises(NotFoundError):
        stores.connections.get(connection.connection_id)


def test_an_ack_stores_the_end_user_it_verified(stores: Stores, client_id: str) -> None:
    connection = _open(stores, client_id)
    expires = utcnow().replace(microsecond=0) + timedelta(minutes=10)
    connection.end_user_id, connection.user_profile, connection.user_expires_at = "ada", "bot", expires
    connection.identity_secret_ref = "ssm:/openbrain/dev/identity/acme/1"
    stores.connections.acknowledge(connection)
    stored = stores.connections.get(connection.connection_id)
    assert (stored.acked, stored.end_user_id, stored.user_profile, stored.user_expires_at,
            stored.identity_secret_ref) == (True, "ada", "bot", expires, "ssm:/openbrain/dev/identity/acme/1")
    anonymous = _open(stores, f"{client_id}-b")
    stores.connections.acknowledge(anonymous)
    stored = stores.connections.get(anonymous.connection_id)
    assert (stored.acked, stored.end_user_id, stored.user_profile, stored.user_expires_at,
            stored.identity_secret_ref) == (True, None, None, None, None)


def test_a_sessions_connections_are_found_by_session_and_client_only(stores: Stores, client_id: str) -> None:
    # given: two connections of one session (one that chatted, one that resumed it with a session frame), one of
    # another session, one without a session, and another client's connection naming the same session id
    session_id, other_session = new_id(), new_id()
    chatted = _open(stores, client_id, endpoint="https://abc.example/dev")
    stores.connections.finish_turn(chatted, session_id)
    resumed = Connection(f"{client_id}-resumed", client_id=client_id, key_kind="widget", endpoint="http://127.0.0.1:1")
    stores.connections.save(resumed)
    stores.connections.set_session(resumed, session_id)
    elsewhere = Connection(f"{client_id}-elsewhere", client_id=client_id, key_kind="widget")
    stores.connections.save(elsewhere)
    stores.connections.set_session(elsewhere, other_session)
    stores.connections.save(Connection(f"{client_id}-idle", client_id=client_id, key_kind="widget"))
    foreign = Connection(f"{client_id}-foreign", client_id=f"{client_id}-b", key_kind="widget")
    stores.connections.save(foreign)
    stores.connections.set_session(foreign, session_id)
    expired = Connection(f"{client_id}-expired", client_id=client_id, key_kind="widget", session_id=session_id,
                         expires_at=utcnow() - timedelta(seconds=1))
    stores.connections.save(expired)

    # when
    found = stores.connections.of_session(client_id, session_id)

    # then: the session's live connections of this client, with the endpoint to post through
    assert resumed.session_id == session_id
    assert sorted((c.connection_id, c.client_id, c.endpoint) for c in found) == [
        (chatted.connection_id, client_id, "https://abc.example/dev"),
        (resumed.connection_id, client_id, "http://127.0.0.1:1")]
    assert [c.connection_id for c in stores.connections.of_session(f"{client_id}-b", session_id)] == [
        foreign.connection_id]
    stores.connections.delete(chatted.connection_id)
    assert [c.connection_id for c in stores.connections.of_session(client_id, session_id)] == [resumed.connection_id]
    stores.connections.set_session(chatted, session_id)  # closed meanwhile: no error, nothing stored
    assert [c.connection_id for c in stores.connections.of_session(client_id, session_id)] == [resumed.connection_id]
