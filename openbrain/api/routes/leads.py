"""`GET /leads` and `GET /leads/{lead_id}`: the leads the key's client captured (`Lead.to_public_dict`)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler.api_gateway import Router
from pydantic import BaseModel

from openbrain.core.ids import existing_id

from ..context import current_client, stores
from .errors import KEY_ERRORS, error_responses
from .security import API_KEY

router = Router()


class Leads(BaseModel):
    leads: list[dict[str, Any]]


@router.get("/leads", summary="The client's leads, newest first", tags=["leads"], security=API_KEY,
            responses=error_responses(*KEY_ERRORS))
def list_leads() -> Leads:
    client = current_client(router, server_key=True)
    return Leads(leads=[lead.to_public_dict() for lead in stores().leads.of_client(client.client_id,
                                                                                    newest_first=True)])


@router.get("/leads/<lead_id>", summary="One lead", tags=["leads"], security=API_KEY,
            responses=error_responses(*KEY_ERRORS, 404, 422))
def get_lead(lead_id: str) -> dict[str, Any]:
    client = current_client(router, server_key=True)
    return stores().leads.get(client.client_id, existing_id(lead_id, "lead")).to_public_dict()
