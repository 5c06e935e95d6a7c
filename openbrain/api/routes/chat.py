"""`POST /chat`: one chat turn for the key's client; the session id also goes back as a cookie."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.shared.cookies import Cookie

from openbrain.conversation.chat import ChatMessage, ChatResponse
from openbrain.services.chat import chat_as_client

from ..context import SESSION_COOKIE, backend, cookie, current_client
from .security import API_KEY

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
    reply = chat_as_client(current_client(router), body, cookie(router, SESSION_COOKIE), backend())
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
