"""`POST /chat`: one chat turn for the key's client; the session id also goes back as a cookie."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.shared.cookies import Cookie

from openbrain.conversation.chat import ChatMessage, ChatResponse, chat
from openbrain.core.errors import ForbiddenError, NotFoundError, SessionEndedError

from ..context import SESSION_COOKIE, cookie, current_client, existing_id, is_id
from .security import API_KEY

# What a widget may override per session: an API key is public (it sits in the page), so the prompt,
# model, tools and limits, which decide what the client pays for, come only from stored profiles.
API_OVERRIDABLE = frozenset({"icebreaker", "temperature"})

router = Router()


@router.post(
    "/chat",
    summary="Send a message (or reset) and get the agent's reply",
    description=(
        "Body: a ChatMessage in camelCase or snake_case (`clientId`, `sessionId`, `message`, `reset`, "
        "`agentConfig`, `agentConfigOverrides`; other keys become tool context). Without `sessionId` the "
        "session comes from the `Session` cookie, else a new one starts. `reset: true` starts a session "
        "and returns its icebreaker."
    ),
    tags=["chat"],
    security=API_KEY,
)
def post_chat(body: Annotated[ChatMessage, Body()]) -> Response[ChatResponse]:
    client = current_client(router)
    if "client_id" in body.model_fields_set and body.client_id != client.client_id:
        raise ForbiddenError("clientId does not match the API key's client")
    body.client_id = client.client_id
    from_cookie = False
    if body.reset:
        pass
    elif body.session_id:
        existing_id(body.session_id, "session")
    else:
        remembered = cookie(router, SESSION_COOKIE)
        if remembered is not None and is_id(remembered):
            body.session_id, from_cookie = remembered, True
    unknown = set(body.agent_config_overrides) - API_OVERRIDABLE
    if unknown:
        raise ForbiddenError(
            f"agentConfigOverrides may set only {', '.join(sorted(API_OVERRIDABLE))} through the API "
            f"(not {', '.join(sorted(unknown))}): the key is public; store a profile for the rest"
        )
    try:
        reply = chat(body)
    except (NotFoundError, SessionEndedError):
        if not from_cookie:
            raise
        # a stale cookie (expired, ended or foreign session) is not the caller's mistake: start afresh
        body.session_id = None
        reply = chat(body)
    return Response(
        status_code=200,
        content_type=content_types.APPLICATION_JSON,
        body=reply,
        cookies=[_session_cookie(reply.session_id)],
    )


def _session_cookie(session_id: str) -> Cookie:
    """`Session=<id>; Path=/; HttpOnly; Secure; SameSite=None`: sent back by a widget on another site."""
    return Cookie(
        SESSION_COOKIE, session_id, path="/", secure=True, http_only=True, custom_attributes=["SameSite=None"]
    )
