"""The key's client's agent profiles: `GET /agent-configs`, `GET|PUT|DELETE /agent-configs/{profile_name}`.

PUT replaces the whole profile (fields left out take their defaults) and answers 201 when it created
it. Optimistic locking: a body `version` (or DELETE's `?version=`) must equal the stored one, else 409;
without it the write applies to whatever is stored. The `default` profile answers GET with the built-in
defaults (`version: null`) until one is stored. Bodies are `openbrain.domain.profile.AgentProfile`, so
the OpenAPI document shows every field's bounds; the work is `openbrain.services.profiles`'.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from pydantic import BaseModel, Field, model_validator

from openbrain.core.errors import ForbiddenError, InvalidInputError
from openbrain.core.ids import NAME_PATTERN, existing_id
from openbrain.domain.profile import AgentProfile
from openbrain.services import profiles
from openbrain.storage.orm import AgentConfig

from ..context import current_client, stores
from .errors import BODY_ERRORS, KEY_ERRORS, error_responses
from .security import API_KEY

router = Router()
ProfileName = Annotated[str, Path(pattern=f"^{NAME_PATTERN.pattern}$", description="1-64 of A-Z a-z 0-9 - _")]


class AgentConfigBody(AgentProfile):
    """A whole profile. `client_id`/`profile_name` may be present (e.g. a GET body sent back) but must
    match the key and the path; `created_at`/`updated_at` are ignored; a `null` field takes its default."""

    version: int | None = None
    # What a GET answers may be sent back as it is; these come from the key, the path and the store.
    client_id: str | None = Field(None, json_schema_extra={"readOnly": True})
    profile_name: str | None = Field(None, json_schema_extra={"readOnly": True})
    created_at: str | None = Field(None, json_schema_extra={"readOnly": True})
    updated_at: str | None = Field(None, json_schema_extra={"readOnly": True})

    @model_validator(mode="before")
    @classmethod
    def _nulls_are_defaults(cls, data: Any) -> Any:
        if isinstance(data, dict):  # unknown keys stay, null or not, to be refused as such
            return {key: value for key, value in data.items()
                    if value is not None or key == "version" or cls.field_name(key) not in cls.model_fields}
        return data

    def expected(self) -> profiles.Expected:
        return self.version if "version" in self.model_fields_set else profiles.LATEST


class AgentConfigOut(AgentProfile):
    client_id: str
    profile_name: str
    version: int | None
    created_at: datetime | None
    updated_at: datetime | None


class AgentConfigs(BaseModel):
    agent_configs: list[AgentConfigOut]


def _out(config: AgentConfig) -> AgentConfigOut:
    stored = config.version is not None
    return AgentConfigOut(
        **config.to_snapshot(),
        created_at=config.created_at if stored else None,
        updated_at=config.updated_at if stored else None,
    )


def _profile_name(profile_name: str) -> str:
    return existing_id(profile_name, f"profile {profile_name[:64]!r}")


@router.get("/agent-configs", summary="The client's stored profiles", tags=["agent-configs"], security=API_KEY,
            responses=error_responses(*KEY_ERRORS))
def list_agent_configs() -> AgentConfigs:
    client = current_client(router, server_key=True)
    stored = profiles.list_profiles(stores().profiles, client.client_id)
    return AgentConfigs(agent_configs=[_out(config) for config in stored])


@router.get("/agent-configs/<profile_name>", summary="One profile", tags=["agent-configs"], security=API_KEY,
            responses=error_responses(*KEY_ERRORS, 404, 422))
def get_agent_config(profile_name: ProfileName) -> AgentConfigOut:
    client = current_client(router, server_key=True)
    return _out(profiles.get(stores().profiles, client.client_id, _profile_name(profile_name)))


@router.put(
    "/agent-configs/<profile_name>", summary="Create or replace a profile", tags=["agent-configs"], security=API_KEY,
    responses={201: {"description": "Created", "content": {"application/json": {"model": AgentConfigOut}}},
               **error_responses(*BODY_ERRORS, *KEY_ERRORS, 409)},
)
def put_agent_config(profile_name: ProfileName, body: Annotated[AgentConfigBody, Body()]) -> Response[AgentConfigOut]:
    client = current_client(router, server_key=True)
    if body.client_id is not None and body.client_id != client.client_id:
        raise ForbiddenError("client_id does not match the API key's client")
    if body.profile_name is not None and body.profile_name != profile_name:
        raise InvalidInputError("profile_name in the body does not match the path")
    saved = profiles.put(stores().profiles, client.client_id, profile_name, body, body.expected())
    return Response(status_code=201 if saved.created else 200, content_type=content_types.APPLICATION_JSON,
                    body=_out(saved.config))


@router.delete(
    "/agent-configs/<profile_name>", summary="Delete a profile", tags=["agent-configs"], security=API_KEY,
    status_code=204,
    responses={204: {"description": "Deleted", "content": {}}, **error_responses(*KEY_ERRORS, 404, 409, 422, ok=None)},
)
def delete_agent_config(profile_name: ProfileName, version: Annotated[int | None, Query()] = None) -> Response[None]:
    client = current_client(router, server_key=True)
    expected = profiles.LATEST if version is None else version
    profiles.delete(stores().profiles, client.client_id, _profile_name(profile_name), expected)
    return Response(status_code=204, content_type=None, body=None)
