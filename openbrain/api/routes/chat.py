"""`POST /chat`: one chat turn for the key's client; the session id also goes back as a cookie."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Header
from aws_lambda_powertools.shared.cookies import Cookie

from openbrain.conversation.chat import ChatMessage, ChatResponse
from openbrain.services.chat import ChatCall, chat_as_client
from openbrain.services.idempotency import KEY_PATTERN
from openbrain.services.identity import Presented

from ..context import KEY_KIND, SESSION_COOKIE, backend, cookie, current_client, end_user, source_ip, turn_deadline
from ..observability import emit_turn
from .errors import BODY_ERRORS, KEY_ERRORS, error_responses
from .security import API_KEY, UserHashHeader, UserIdHeader, WidgetTokenHeader

router = Router()
IDEMPOTENCY = (
    "Any unique string (e.g. a UUID): the same request sent again with the same key within 24 hours gets the "
    "stored reply (header `Idempotent-Replayed: true`) instead of running a second turn; the same key with "
    "another body is 422, while the first is still running 409."
)


@router.post(
    "/chat",
    summary="Send a message (or reset) and get the agent's reply",
    description=(
        "Body: a ChatMessage in camelCase or snake_case (`clientId`, `sessionId`, `message`, `reset`, "
        "`agentConfig`, `agentConfigOverrides`, `context`; other keys become tool context, and a `timezone` there "
        "must be an IANA zone). Without `sessionId` the "
        "session comes from the `Session` cookie, else a new one starts. `reset: true` starts a session "
        "and returns its icebreaker. The end-user identity headers (docs/api.md, End-user identity) bind a new "
        "session to the user; another user's session is 404."
    ),
    tags=["chat"],
    security=API_KEY,
    responses=error_responses(*BODY_ERRORS, *KEY_ERRORS, 404, 409, 429, 504),
)
def post_chat(body: Annotated[ChatMessage, Body()],
              idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", description=IDEMPOTENCY,
                                                            pattern=KEY_PATTERN.pattern)] = None,
              user_id: UserIdHeader = None, user_hash: UserHashHeader = None, widget_token: WidgetTokenHeader = None,
              ) -> Response[ChatResponse]:
    client = current_client(router)
    user = end_user(router, client, Presented(user_id, user_hash, widget_token))
    call = ChatCall(cookie(router, SESSION_COOKIE), idempotency_key, turn_deadline(router), router.lambda_context,
                    end_user=source_ip(router), key_kind=router.context[KEY_KIND], observe=emit_turn, user=user)
    reply, replayed = chat_as_client(client, body, call, backend())
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=reply,
                    headers={"Idempotent-Replayed": "true"} if replayed else None,
                    cookies=[session_cookie(reply.session_id)])


def session_cookie(session_id: str) -> Cookie:
    """`Session=<id>; Path=/; HttpOnly; Secure; SameSite=None`: sent back by a widget on another site (also by
    `ob-serve`'s SSE route, `openbrain/local/sse.py`)."""
    return Cookie(
        SESSION_COOKIE, session_id, path="/", secure=True, http_only=True, custom_attributes=["SameSite=None"]
    )
