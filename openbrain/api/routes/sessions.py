"""`GET /sessions/{session_id}`: a session's transcript and state, so a UI can reload and resume; `GET /sessions`:
an end user's sessions (server key), so they can resume one on another device."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query

from openbrain.core.ids import existing_id
from openbrain.domain.identity import USER_ID_PATTERN
from openbrain.services import sessions
from openbrain.services.identity import Presented

from ..context import backend, current_client, end_user, stores
from .errors import KEY_ERRORS, error_responses
from .security import API_KEY, UserHashHeader, UserIdHeader, WidgetTokenHeader

router = Router()


@router.get("/sessions/<session_id>", summary="A session's messages and state", tags=["sessions"], security=API_KEY,
            description="A session bound to an end user (docs/api.md, End-user identity) is 404 to any other "
                        "caller of a widget key.",
            responses=error_responses(*KEY_ERRORS, 404, 422))
def get_session(session_id: str, user_id: UserIdHeader = None, user_hash: UserHashHeader = None,
                widget_token: WidgetTokenHeader = None) -> sessions.Session:
    client = current_client(router)
    user = end_user(router, client, Presented(user_id, user_hash, widget_token))
    return sessions.get_session(stores(), client.client_id, session_id, user)


@router.get("/sessions", summary="An end user's sessions, last updated first", tags=["sessions"], security=API_KEY,
            description="Server key only. The sessions started by the verified end user `userId` (their id, "
                        "profile, times, turn count, whether ended), at most `limit`.",
            responses=error_responses(*KEY_ERRORS, 422))
def list_user_sessions(
    user_id: Annotated[str, Query(alias="userId", pattern=USER_ID_PATTERN, description="the end user's id")],
    limit: Annotated[int, Query(ge=1, le=sessions.MAX_USER_SESSIONS, description="how many, newest first")] = 20,
) -> sessions.UserSessions:
    client = current_client(router, server_key=True)
    return sessions.user_sessions(stores(), client.client_id, user_id, limit)


@router.get("/sessions/<session_id>/schedules", summary="A session's scheduled messages, soonest first",
            tags=["sessions"], security=API_KEY,
            description="The messages waiting to be sent in the session (docs/scheduling.md): a `dps` command, the "
                        "`schedule_message` tool or the API scheduled them. A session bound to an end user is 404 "
                        "to any other caller of a widget key.",
            responses=error_responses(*KEY_ERRORS, 404, 422))
def list_schedules(session_id: str, user_id: UserIdHeader = None, user_hash: UserHashHeader = None,
                   widget_token: WidgetTokenHeader = None) -> sessions.Schedules:
    client = current_client(router)
    user = end_user(router, client, Presented(user_id, user_hash, widget_token))
    return sessions.session_schedules(stores(), client.client_id, session_id, user)


@router.delete("/sessions/<session_id>/schedules/<schedule_id>", summary="Cancel a scheduled message",
               tags=["sessions"], security=API_KEY,
               description="The cancelled message, as it was scheduled; 404 if the session has no such message "
                           "waiting (sent already, or cancelled).",
               responses=error_responses(*KEY_ERRORS, 404, 409, 422))
def cancel_schedule(session_id: str, schedule_id: str, user_id: UserIdHeader = None, user_hash: UserHashHeader = None,
                    widget_token: WidgetTokenHeader = None) -> sessions.ScheduledMessage:
    client = current_client(router)
    user = end_user(router, client, Presented(user_id, user_hash, widget_token))
    return sessions.cancel_schedule(backend(), client.client_id, session_id,
                                    existing_id(schedule_id, "scheduled message"), user)
