"""A chat turn as an API caller may ask for it: the rules a public key lives by, around `conversation.chat`.

- the key decides the client: a body naming another `clientId` is `ForbiddenError`;
- a widget may override only `API_OVERRIDABLE` per session: the prompt, model, tools and limits, which
  decide what the client pays for, come only from stored profiles;
- without `sessionId` (and without `reset`), the session the caller's cookie remembers continues; if that
  session expired, ended or is not the client's, the cookie is stale, which is not the caller's mistake:
  a new session starts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from openbrain.conversation.chat import ChatMessage, ChatResponse, chat
from openbrain.core.errors import ForbiddenError, NotFoundError, SessionEndedError
from openbrain.core.ids import existing_id, is_id

if TYPE_CHECKING:
    from openbrain.aws.backend import Backend
    from openbrain.storage.orm import Client

API_OVERRIDABLE = frozenset({"icebreaker", "temperature"})


def chat_as_client(client: Client, request: ChatMessage, remembered_session: str | None, backend: Backend
                   ) -> ChatResponse:
    """Run `request` for `client` (see the module docstring); `remembered_session`: the id the caller's
    session cookie holds, if any."""
    if "client_id" in request.model_fields_set and request.client_id != client.client_id:
        raise ForbiddenError("clientId does not match the API key's client")
    request.client_id = client.client_id
    from_cookie = False
    if request.reset:
        pass
    elif request.session_id:
        existing_id(request.session_id, "session")
    elif is_id(remembered_session):
        request.session_id, from_cookie = remembered_session, True
    unknown = set(request.agent_config_overrides) - API_OVERRIDABLE
    if unknown:
        raise ForbiddenError(
            f"agentConfigOverrides may set only {', '.join(sorted(API_OVERRIDABLE))} through the API "
            f"(not {', '.join(sorted(unknown))}): the key is public; store a profile for the rest"
        )
    try:
        return chat(request, backend)
    except (NotFoundError, SessionEndedError):
        if not from_cookie:
            raise
        request.session_id = None
        return chat(request, backend)
