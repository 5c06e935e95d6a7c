"""`GET /sessions/{session_id}`: a session's transcript and state, so a UI can reload and resume."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.api_gateway import Router

from openbrain.core.ids import existing_id
from openbrain.services import sessions

from ..context import current_client, stores
from .errors import KEY_ERRORS, error_responses
from .security import API_KEY

router = Router()


@router.get("/sessions/<session_id>", summary="A session's messages and state", tags=["sessions"], security=API_KEY,
            responses=error_responses(*KEY_ERRORS, 404, 422))
def get_session(session_id: str) -> sessions.Session:
    client = current_client(router)
    return sessions.get_session(stores(), client.client_id, existing_id(session_id, "session"))
