"""The streaming API over a WebSocket, one protocol on API Gateway and in `ob-serve` (docs/api.md, Streaming).

The handlers take the event API Gateway's WebSocket API gives a Lambda (`requestContext.routeKey`,
`connectionId`, `domainName`, `stage`; headers and query on `$connect`; `body` on a frame) and, for frames, a
`Socket`: on AWS the Management API (`post_to_connection`, `delete_connection`: `ManagementApi`), under
`ob-serve` the socket itself (`openbrain.local.websocket`). What a connection is lives in the connections table
(`storage/orm/connection.py`), so every invocation of a stateless Lambda knows it.

- `connect`: the key from the query parameter `key` or a `Sec-WebSocket-Protocol` entry (a browser cannot set
  headers: it offers `["openbrain", key]` and the server selects `openbrain`), checked with the Origin by
  `authorize` (streaming.py); 401 / 403 fail the upgrade. The client and key kind are the connection's from
  then on, never a frame's.
- `receive`: one frame. Until `{"action": "ack"}` the client gets nothing; the ack later than
  `OB_WS_ACK_SECONDS` after connecting (`ack_timeout`) or any other frame first (`ack_required`) gets an
  `error` frame and the connection is closed (`CLOSE_POLICY`). The ack carries the end-user identity, if any
  (`userId` + `userHash`, or `token`: services/identity.py); one that does not verify, or none where the client
  requires it, is closed the same way (`unauthorized`); the verified user is the connection's from then on
  (a later ack changes nothing), until a widget token it came with expires or the client's identity secret that
  verified it is rotated: the next frame then closes it (`unauthorized`); an anonymous connection whose client
  has required identity since its ack gets an `unauthorized` error frame for each `chat` and `session`. Then
  frames are JSON objects of at most `MAX_FRAME_BYTES` with an `action` (`ACTIONS`); a bad one gets an `error`
  frame and the connection stays.
- `disconnect`: forgets the connection.
- `push`: a frame from outside any turn (a scheduled message: services/schedules.py) posted to every open
  connection of a session, through the Management API endpoint each connection was stored with (`ob-serve`'s
  is a loopback Management API of the process holding the socket: openbrain/local/management.py).
- `expire`: closes a connection that has not acknowledged (`ack_timeout`): `ob-serve` calls it when the
  connection's ack time is up; on AWS `sweep`, scheduled every minute, calls it for every connection older
  than the limit (a silent client is closed 10 to ~70 s after connecting, or at its next frame after 10 s).

A `Socket.post` to a connection that is gone (API Gateway's 410) raises `ConnectionGoneError`: nothing more
is posted and the connection is forgotten; a turn in flight runs to its end first, unheard, so the person's
message and its reply are stored whole (as over SSE) and the session shows them on reconnecting.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable, Generator
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol, cast

from openbrain.aws.backend import get_backend
from openbrain.aws.connections import ConnectionGoneError, ManagementApi
from openbrain.core.clock import utcnow
from openbrain.core.errors import ForbiddenError, InvalidInputError, NotFoundError, OpenBrainError, UnauthorizedError
from openbrain.core.ids import existing_id
from openbrain.domain.identity import IDENTITY_REQUIRED, EndUser
from openbrain.services.chat import ChatCall
from openbrain.services.identity import Presented, identify
from openbrain.services.sessions import get_session
from openbrain.storage.orm import Connection
from openbrain.storage.orm.chat_session import existing_session_id
from openbrain.storage.orm.client import SERVER, parse_api_key

from .body import bounded_json
from .context import API_GATEWAY_SECONDS, DEADLINE_MARGIN_SECONDS
from .observability import emit_turn, logger
from .routes.errors import INVALID_JSON_MESSAGE, InvalidJsonError, PayloadTooLargeError, error_event, public_error
from .streaming import authorize, chat_stream, coalesce

if TYPE_CHECKING:
    from openbrain.aws.backend import Backend
    from openbrain.conversation.agents.runner import TurnEvent
    from openbrain.storage.orm import Client

SUBPROTOCOL = "openbrain"
MAX_FRAME_BYTES = 32_768  # API Gateway's WebSocket frame limit
CLOSE_POLICY = 1008  # the ack rule broken (RFC 6455: policy violation)
CLOSE_IDLE = 1001  # ob-serve: no frame either way for OB_WS_IDLE_SECONDS (API Gateway: 10 minutes)
TURN_STALE = timedelta(minutes=5)  # a turn marked in flight for longer crashed: it no longer blocks the next
ACTIONS = ("ack", "chat", "session", "lead")  # lead: server keys only, as GET /leads/{id}


class Socket(Protocol):
    """How frames reach a connection."""

    def post(self, connection_id: str, frame: dict[str, Any]) -> None:
        """Send `frame` as JSON text; `ConnectionGoneError` if the connection is gone."""
        ...

    def close(self, connection_id: str, code: int, reason: str) -> None:
        """Close the connection (API Gateway closes it with a code of its own); gone already is no error."""
        ...


# ------------------------------------------------------------------------------------------------ routes
def connect(event: dict[str, Any], backend: Backend, *, endpoint: str | None = None) -> dict[str, Any]:
    """`$connect`: 200 (and the selected subprotocol) and the connection stored, or 401 / 403 with the
    API's error body. The connection's Management API is `endpoint` (`ob-serve`'s own), else the stage's
    (`https://<domainName>/<stage>`)."""
    context = event["requestContext"]
    headers = {name.lower(): value for name, value in (event.get("headers") or {}).items()}
    offered = [p.strip() for p in headers.get("sec-websocket-protocol", "").split(",") if p.strip()]
    api_key = (event.get("queryStringParameters") or {}).get("key") or next(
        (p for p in offered if parse_api_key(p)), None)
    origin = headers.get("origin")
    try:
        client = authorize(api_key, origin, backend)
    except OpenBrainError as exc:
        status, code, message = public_error(exc)
        return {"statusCode": int(status), "body": json.dumps({"error": {"code": code, "message": message}})}
    parsed = parse_api_key(api_key)
    assert parsed is not None  # authorize accepted it
    domain, stage = context.get("domainName"), context.get("stage")
    if endpoint is None and domain and stage:
        endpoint = f"https://{domain}/{stage}"
    backend.stores.connections.save(Connection(
        context["connectionId"], client_id=client.client_id, key_kind=parsed[0], origin=origin, endpoint=endpoint))
    logger.info("websocket connected", extra={"client_id": client.client_id, "key_kind": parsed[0]})
    response: dict[str, Any] = {"statusCode": 200}
    if SUBPROTOCOL in offered:
        response["headers"] = {"Sec-WebSocket-Protocol": SUBPROTOCOL}
    return response


def disconnect(event: dict[str, Any], backend: Backend) -> None:
    """`$disconnect`: forget the connection."""
    backend.stores.connections.delete(event["requestContext"]["connectionId"])


def receive(event: dict[str, Any], backend: Backend, socket: Socket, *, deadline: float = math.inf) -> None:
    """`$default`: one frame of the connection (module docstring). A turn must end by `deadline`
    (`time.monotonic()`)."""
    connection_id = event["requestContext"]["connectionId"]
    stores = backend.stores
    try:
        connection = stores.connections.get(connection_id)
    except NotFoundError:  # swept, or its record expired: nothing of it is left to serve
        socket.close(connection_id, CLOSE_POLICY, "unknown connection")
        return
    try:
        if not connection.acked:
            _acknowledge(connection, event, backend, socket)
            return
        if connection.user_expires_at is not None and connection.user_expires_at <= utcnow():
            _refuse(connection, "unauthorized", "the widget token expired: connect again with a new one", backend,
                    socket)
            return
        client = None  # read here for a connection a secret verified, which is refused once that secret is rotated
        if connection.identity_secret_ref is not None:
            client = stores.clients.get(connection.client_id)
            if client.identity_secret_ref != connection.identity_secret_ref:
                _refuse(connection, "unauthorized", "the client's identity secret changed: connect again with a "
                        "new user hash or token", backend, socket)
                return
        try:
            data = _frame(event)
            action = data.pop("action")
            if action == "ack":
                socket.post(connection_id, {"type": "ack"})
            elif action == "chat":
                _chat(connection, data, backend, socket, deadline,
                      (event["requestContext"].get("identity") or {}).get("sourceIp"), client)
            elif action == "session":
                user = _user(connection)
                # an anonymous connection acked before its client required identity is refused, as over HTTP (its
                # chat frames are, by services/chat.py)
                anonymous = user is not None and user.user_id is None
                if anonymous and stores.clients.get(connection.client_id).identity_required:
                    raise UnauthorizedError(IDENTITY_REQUIRED)
                session_id = existing_session_id(
                    connection.client_id, data.get("sessionId") or data.get("session_id") or connection.session_id)
                session = get_session(stores, connection.client_id, session_id, user)
                stores.connections.set_session(connection, session_id)  # resumed: what is pushed to it arrives
                socket.post(connection_id, {"type": "session", "session": session.model_dump(mode="json")})
            else:  # "lead"
                if connection.key_kind != SERVER:
                    raise ForbiddenError("the lead action needs a server API key (ob.…); a widget key may only "
                                         "chat and read its sessions")
                lead_id = existing_id(data.get("leadId") or data.get("lead_id"), "lead")
                lead = stores.leads.get(connection.client_id, lead_id)
                socket.post(connection_id, {"type": "lead", "lead": lead.to_public_dict()})
        except ConnectionGoneError:
            raise
        except Exception as exc:  # every failure is an error frame, mapped and logged as over HTTP
            socket.post(connection_id, error_event(exc))
    except ConnectionGoneError:
        stores.connections.delete(connection_id)


def expire(connection_id: str, backend: Backend, socket: Socket) -> bool:
    """Close the connection if it has not acknowledged (its time is up: `ob-serve`'s timer, or the sweep);
    whether it was closed."""
    try:
        connection = backend.stores.connections.get(connection_id)
    except NotFoundError:
        return False
    if connection.acked:
        return False
    _refuse(connection, "ack_timeout", f"no ack within {backend.settings.ws_ack_seconds:g} s of connecting",
            backend, socket)
    return True


def sweep(backend: Backend, socket_for: Callable[[Connection], Socket]) -> int:
    """`expire` every connection not acknowledged within `OB_WS_ACK_SECONDS` of connecting (through the socket
    `socket_for` gives it); how many were closed."""
    limit = timedelta(seconds=backend.settings.ws_ack_seconds)
    return sum(expire(connection.connection_id, backend, socket_for(connection))
               for connection in backend.stores.connections.unacked_before(utcnow() - limit))


# ------------------------------------------------------------------------------------------------ frames
def _acknowledge(connection: Connection, event: dict[str, Any], backend: Backend, socket: Socket) -> None:
    """The first frame: the ack in time, or the connection is closed."""
    limit = backend.settings.ws_ack_seconds
    try:
        action = _frame(event).get("action")
    except InvalidInputError:
        action = None
    if utcnow() - connection.connected_at > timedelta(seconds=limit):
        _refuse(connection, "ack_timeout", f"no ack within {limit:g} s of connecting", backend, socket)
    elif action != "ack":
        _refuse(connection, "ack_required", 'the first frame must be {"action": "ack"}', backend, socket)
    else:
        data = _frame(event)
        presented = Presented(data.get("userId"), data.get("userHash"), data.get("token"))
        try:
            client = backend.stores.clients.get(connection.client_id)
            user = identify(client, str(connection.key_kind), presented, backend)
        except OpenBrainError as exc:  # an identity that does not verify (or none, where required): closed
            _, code, message = public_error(exc)
            _refuse(connection, code, message, backend, socket)
            return
        if user is not None:
            connection.end_user_id, connection.user_profile = user.user_id, user.profile
            connection.user_expires_at = user.expires_at
            if user.user_id is not None and (str(connection.key_kind) != SERVER or presented.token is not None):
                connection.identity_secret_ref = client.identity_secret_ref  # the secret vouched for them
        backend.stores.connections.acknowledge(connection)
        socket.post(connection.connection_id, {"type": "ack"})


def _user(connection: Connection) -> EndUser | None:
    """The end user the connection's ack verified (None: a server key's, naming nobody)."""
    if connection.key_kind == SERVER and connection.end_user_id is None:
        return None
    return EndUser(connection.end_user_id, connection.user_profile)


def _refuse(connection: Connection, code: str, message: str, backend: Backend, socket: Socket) -> None:
    """The ack rule broken: an `error` frame, the connection closed (`CLOSE_POLICY`) and forgotten."""
    with contextlib.suppress(ConnectionGoneError):
        socket.post(connection.connection_id, {"type": "error", "code": code, "message": message})
    socket.close(connection.connection_id, CLOSE_POLICY, code)
    backend.stores.connections.delete(connection.connection_id)


def _frame(event: dict[str, Any]) -> dict[str, Any]:
    """The frame as a JSON object with a known `action`, or the error that says why not."""
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        raise InvalidInputError("frames are JSON text, not binary")
    size = len(body) if body.isascii() else len(body.encode())
    if size > MAX_FRAME_BYTES:
        raise PayloadTooLargeError(f"the frame is {size} bytes; the limit is {MAX_FRAME_BYTES}")
    try:
        data = bounded_json(body)
    except json.JSONDecodeError as exc:
        raise InvalidJsonError(INVALID_JSON_MESSAGE.replace("request body", "frame")) from exc
    if not isinstance(data, dict) or data.get("action") not in ACTIONS:
        raise InvalidInputError(f"a frame is a JSON object with an action: one of {', '.join(ACTIONS)}")
    return data


def _chat(connection: Connection, data: dict[str, Any], backend: Backend, socket: Socket, deadline: float,
          source_ip: str | None, client: Client | None = None) -> None:
    """One turn, its events posted as they come (tokens coalesced); its session becomes the connection's. A widget
    key's turns count against the client's rate limits, per caller by `source_ip` (services/limits.py). `client`:
    the connection's, if the caller read it already."""
    stores = backend.stores
    if not stores.connections.start_turn(connection, utcnow() - TURN_STALE):
        socket.post(connection.connection_id, {
            "type": "error", "code": "conflict",
            "message": "a turn is running on this connection; send the next after its turn.finished"})
        return
    finished, gone = False, None
    try:
        client = client or stores.clients.get(connection.client_id)
        call = ChatCall(remembered_session=connection.session_id, deadline=deadline, end_user=source_ip,
                        key_kind=str(connection.key_kind), observe=emit_turn, user=_user(connection))
        # coalesce is a generator: closed on the way out (an error), it closes the turn's stream where it stands
        events = cast("Generator[TurnEvent, None, None]", coalesce(chat_stream(client, data, call, backend)))
        with contextlib.closing(events):
            for event in events:
                if event["type"] in {"turn.finished", "error"}:  # the last: free the connection before the
                    stores.connections.finish_turn(connection, event.get("session_id"))  # client hears it
                    finished = True
                if gone is None:
                    try:
                        socket.post(connection.connection_id, event)
                    except ConnectionGoneError as exc:  # the turn runs to its end unheard: stored whole,
                        gone = exc  # as over SSE (docs/api.md), for the person to find on reconnecting
    finally:
        if not finished:
            stores.connections.finish_turn(connection, None)
    if gone is not None:
        raise gone


# ------------------------------------------------------------------------------------------------ on AWS
def frame_deadline(context: Any = None) -> float:
    """When a turn of a frame received now must end: before API Gateway stops waiting for the integration (29 s;
    it would then send the client a frame of its own) and before the Lambda's time (`context`, if any) runs
    out, less a margin for the commit. `ob-serve` keeps the same limit."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    budget = min(API_GATEWAY_SECONDS, remaining() / 1000 if remaining else math.inf)
    return time.monotonic() + budget - DEADLINE_MARGIN_SECONDS


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The Lambda entry point (template.yaml: `lambdas/chat_ws/app.handler`): the WebSocket API's three
    routes, and the scheduled sweep (an event without `requestContext`)."""
    backend = get_backend()
    region = backend.settings.region
    request = event.get("requestContext")
    if request is None:
        closed = sweep(backend, lambda connection: ManagementApi(str(connection.endpoint), region))
        logger.info("websocket sweep", extra={"closed": closed})
        return {"closed": closed}
    logger.thread_safe_clear_keys()
    logger.thread_safe_append_keys(correlation_id=request.get("requestId"))
    route = request.get("routeKey")
    if route == "$connect":
        return connect(event, backend)
    if route == "$disconnect":
        disconnect(event, backend)
    else:
        socket = ManagementApi(f"https://{request['domainName']}/{request['stage']}", region)
        receive(event, backend, socket, deadline=frame_deadline(context))
    return {"statusCode": 200}

