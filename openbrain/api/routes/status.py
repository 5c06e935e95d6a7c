"""`GET /` (is the API up; no key) and `GET /authz` (is this key good; which client is it)."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.api_gateway import Router
from pydantic import BaseModel

from ..context import current_client
from .errors import KEY_ERRORS, error_responses
from .security import API_KEY

router = Router()


class Status(BaseModel):
    status: str = "ready"


class Authz(Status):
    client_id: str


@router.get("/", summary="Is the API up", tags=["status"], responses=error_responses())
def ready() -> Status:
    return Status()


@router.get("/authz", summary="Check an API key", tags=["status"], security=API_KEY,
            responses=error_responses(*KEY_ERRORS))
def authz() -> Authz:
    return Authz(client_id=current_client(router).client_id)
