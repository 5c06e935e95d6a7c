"""A chat turn as an API caller may ask for it: the rules a public key lives by, around `conversation.chat`.

- the key decides the client: a body naming another `clientId` is `ForbiddenError`;
- a widget may override only `API_OVERRIDABLE` per session: the prompt, model, tools and limits, which
  decide what the client pays for, come only from stored profiles;
- without `sessionId` (and without `reset`), the session the caller's cookie remembers continues; if that
  session expired, ended or is not the client's, the cookie is stale, which is not the caller's mistake:
  a new session starts;
- with an `Idempotency-Key`, a request sent again gets the stored reply (services/idempotency.py);
- a turn asked for with a widget key is counted against the client's rate limits and quotas before it runs
  (services/limits.py: `RateLimitedError`, and nothing runs); a server key's turns are not (it is the client's
  own secret, and its server speaks for many end users from one address);
- every turn, whatever the key, adds to the client's usage (services/usage.py), in its commit;
- the end user (`ChatCall.user`, verified by `services.identity.identify`): a new session is bound to them, a
  session bound to another user (or, for a token scoped to a profile, of another profile) is `NotFoundError`;
  a widget key without one is the anonymous visitor, refused outright when the client requires identity; the
  rate limits count a verified user's turns for them (`limits_key`), else for the caller's IP;
- `chat_events_as_client` is the same request as its stream of events (conversation/chat.py), for the
  streaming transports; a stream is not idempotent (a request sent again runs again).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from openbrain.conversation.chat import ChatMessage, ChatResponse, chat_events, collect
from openbrain.core.errors import ForbiddenError, NotFoundError, RateLimitedError, SessionEndedError, UnauthorizedError
from openbrain.core.ids import is_id
from openbrain.domain.identity import ANONYMOUS, IDENTITY_REQUIRED, EndUser
from openbrain.services.limits import admit
from openbrain.services.usage import TurnLedger, TurnUsage
from openbrain.storage.orm.chat_session import existing_session_id
from openbrain.storage.orm.client import WIDGET

if TYPE_CHECKING:
    from openbrain.aws.backend import Backend
    from openbrain.conversation.agents.runner import TurnEvent
    from openbrain.storage.orm import Client

API_OVERRIDABLE = frozenset({"icebreaker", "temperature"})


@dataclass
class ChatCall:
    """How the API received a chat request, beside its body."""

    remembered_session: str | None = None  # the id the caller's session cookie holds
    idempotency_key: str | None = None  # services/idempotency.py
    deadline: float = math.inf  # time.monotonic() by which the turn must end (conversation/chat.py)
    lambda_context: Any = None
    end_user: str | None = None  # the caller's IP (API Gateway's `sourceIp`): whom limits count without a user
    key_kind: str = WIDGET  # the kind of the caller's API key: a widget key's turns are rate limited
    observe: Callable[[TurnUsage], None] | None = None  # told each turn's usage (the Lambdas' metrics)
    user: EndUser | None = None  # the end user `services.identity.identify` verified (None: a widget key's is
    # the anonymous visitor, a server key's nobody in particular)


def chat_as_client(client: Client, request: ChatMessage, call: ChatCall, backend: Backend
                   ) -> tuple[ChatResponse, bool]:
    """Run `request` for `client` (see the module docstring): the reply, and whether it is the stored reply
    of an earlier request with the same `Idempotency-Key` (no turn ran)."""
    if call.idempotency_key is None:
        return _chat_as_client(client, request, call, backend), False
    from openbrain.services.idempotency import once

    body = request.model_dump(mode="json")
    if call.user is not None and call.user.user_id is not None:  # another user's replay is another body: never
        body["end_user"] = call.user.user_id  # the stored reply of someone else's request (422, not their reply)
    result, replayed = once(backend, client.client_id, call.idempotency_key, body,
                            lambda: _chat_as_client(client, request, call, backend).model_dump(mode="json"),
                            call.lambda_context)
    return ChatResponse.model_validate(result), replayed


def _chat_as_client(client: Client, request: ChatMessage, call: ChatCall, backend: Backend) -> ChatResponse:
    return collect(chat_events_as_client(client, request, call, backend, tokens=False))


def chat_events_as_client(client: Client, request: ChatMessage, call: ChatCall, backend: Backend, *,
                          tokens: bool = True) -> Iterator[TurnEvent]:
    """Run `request` for `client` (see the module docstring), yielding its events. The rules are checked and
    the session read when the first event is asked for."""
    if "client_id" in request.model_fields_set and request.client_id != client.client_id:
        raise ForbiddenError("clientId does not match the API key's client")
    request.client_id = client.client_id
    from_cookie = False
    if request.reset:
        pass
    elif request.session_id:
        existing_session_id(client.client_id, request.session_id)
    elif is_id(call.remembered_session):
        request.session_id, from_cookie = call.remembered_session, True
    unknown = set(request.agent_config_overrides) - API_OVERRIDABLE
    if unknown:
        raise ForbiddenError(
            f"agentConfigOverrides may set only {', '.join(sorted(API_OVERRIDABLE))} through the API "
            f"(not {', '.join(sorted(unknown))}): the key is public; store a profile for the rest"
        )
    user = call.user
    ledger = TurnLedger(client.client_id, backend.stores.counters, observe=call.observe)
    if call.key_kind == WIDGET:
        user = user or ANONYMOUS
        if client.identity_required and user.user_id is None:  # identify refused it already: defence in depth
            raise UnauthorizedError(IDENTITY_REQUIRED)
        continuing = None if request.reset else request.session_id  # a reset starts a new session
        try:
            ledger.admission = admit(client, limits_key(user) or call.end_user, continuing, backend.stores.counters)
        except RateLimitedError:
            ledger.refused()
            raise
    started = False
    try:
        events = chat_events(request, backend, deadline=call.deadline, tokens=tokens, counts=ledger.committing,
                             user=user)
        try:
            first = next(events)
        except (NotFoundError, SessionEndedError):
            if not from_cookie:
                raise
            request.session_id = None
            events = chat_events(request, backend, deadline=call.deadline, tokens=tokens, counts=ledger.committing,
                                 user=user)
            first = next(events)
        started = True
        yield first
        for event in events:
            if event["type"] == "message":  # sent after the commit: it carried the ledger's counts
                ledger.committed()
            yield event
    except Exception:
        ledger.failed(error=started)
        raise
    finally:  # the caller stopped reading (GeneratorExit), or the request was a reset (no commit)
        ledger.failed(error=False)


def limits_key(user: EndUser | None) -> str | None:
    """Whom the rate limits count a verified user's turns for: `u:` and a digest of the user id (fixed length,
    no personal data in the counters table, never equal to an IP); None without a verified user."""
    if user is None or user.user_id is None:
        return None
    return "u:" + hashlib.sha256(user.user_id.encode()).hexdigest()[:32]
