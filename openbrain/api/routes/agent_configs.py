"""The key's client's agent profiles: `GET /agent-configs`, `GET|PUT|DELETE /agent-configs/{profile_name}`.

PUT replaces the whole profile (fields left out take their defaults) and answers 201 when it created
it. Optimistic locking: a body `version` (or DELETE's `?version=`) must equal the stored one, else 409;
without it the write applies to whatever is stored. The `default` profile answers GET with the built-in
defaults (`version: null`) until one is stored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from openbrain.core.errors import ConflictError, ForbiddenError, InvalidInputError, NotFoundError
from openbrain.storage.orm import AgentConfig, MemoryPolicy

from ..context import current_client, existing_id
from .security import API_KEY

router = Router()


def _both(snake: str) -> Any:
    head, *rest = snake.split("_")
    camel = head + "".join(part.title() for part in rest)
    return Field(None, validation_alias=AliasChoices(snake, camel))


class MemoryPolicyBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    window_messages: int | None = _both("window_messages")
    window_tokens: int | None = _both("window_tokens")
    max_stored_messages: int | None = _both("max_stored_messages")
    max_stored_bytes: int | None = _both("max_stored_bytes")


class AgentConfigBody(BaseModel):
    """A whole profile. `client_id`/`profile_name` may be present (e.g. a GET body sent back) but must
    match the key and the path; `created_at`/`updated_at` are ignored."""

    model_config = ConfigDict(extra="forbid", strict=True)

    system_message: str | None = _both("system_message")
    icebreaker: str | None = Field(None, validation_alias=AliasChoices("icebreaker", "iceBreaker"))
    model: str | None = None
    temperature: float | None = None
    tools: list[str] | None = None
    max_iterations: int | None = _both("max_iterations")
    max_execution_time: float | None = _both("max_execution_time")
    memory: MemoryPolicyBody | None = None
    version: int | None = None
    client_id: str | None = _both("client_id")
    profile_name: str | None = _both("profile_name")
    created_at: str | None = _both("created_at")
    updated_at: str | None = _both("updated_at")


class AgentConfigOut(BaseModel):
    client_id: str
    profile_name: str
    system_message: str
    icebreaker: str
    model: str
    temperature: float
    tools: list[str]
    max_iterations: int
    max_execution_time: float
    memory: dict[str, int]
    version: int | None
    created_at: datetime | None
    updated_at: datetime | None


class AgentConfigs(BaseModel):
    agent_configs: list[AgentConfigOut]


def _out(config: AgentConfig, stored: bool = True) -> AgentConfigOut:
    return AgentConfigOut(
        **config.to_snapshot(),
        created_at=config.created_at if stored else None,
        updated_at=config.updated_at if stored else None,
    )


def _stored(client_id: str, profile_name: str) -> AgentConfig | None:
    try:
        return AgentConfig.get(client_id, profile_name)
    except NotFoundError:
        return None


def _not_found(profile_name: str) -> NotFoundError:
    return NotFoundError(f"profile {profile_name!r} not found")


@router.get("/agent-configs", summary="The client's stored profiles", tags=["agent-configs"], security=API_KEY)
def list_agent_configs() -> AgentConfigs:
    client = current_client(router, server_key=True)
    return AgentConfigs(agent_configs=[_out(c) for c in AgentConfig.get_all(client.client_id)])


@router.get("/agent-configs/<profile_name>", summary="One profile", tags=["agent-configs"], security=API_KEY)
def get_agent_config(profile_name: str) -> AgentConfigOut:
    client = current_client(router, server_key=True)
    existing_id(profile_name, f"profile {profile_name[:64]!r}")
    config = AgentConfig.get_or_default(client.client_id, profile_name)
    return _out(config, stored=config.version is not None)


@router.put(
    "/agent-configs/<profile_name>", summary="Create or replace a profile", tags=["agent-configs"], security=API_KEY
)
def put_agent_config(profile_name: str, body: Annotated[AgentConfigBody, Body()]) -> Response[AgentConfigOut]:
    client = current_client(router, server_key=True)
    if body.client_id is not None and body.client_id != client.client_id:
        raise ForbiddenError("client_id does not match the API key's client")
    if body.profile_name is not None and body.profile_name != profile_name:
        raise InvalidInputError("profile_name in the body does not match the path")
    fields = body.model_dump(
        exclude_none=True, exclude={"version", "client_id", "profile_name", "created_at", "updated_at", "memory"}
    )
    config = AgentConfig(client.client_id, profile_name, **fields)
    if body.memory is not None:
        config.memory = MemoryPolicy(**body.memory.model_dump(exclude_none=True))
    config.validate()  # before reading: a bad profile name never reaches DynamoDB
    existing = _stored(client.client_id, profile_name)
    if existing is not None:
        config.created_at = existing.created_at
    expected = body.version if "version" in body.model_fields_set else existing.version if existing else None
    if expected is not None:  # None: the write is conditional on no item existing
        config.version = expected
    config.save()
    return Response(
        status_code=200 if existing is not None else 201,
        content_type=content_types.APPLICATION_JSON,
        body=_out(config),
    )


@router.delete(
    "/agent-configs/<profile_name>", summary="Delete a profile", tags=["agent-configs"], security=API_KEY,
    status_code=204,
)
def delete_agent_config(profile_name: str, version: Annotated[int | None, Query()] = None) -> Response[None]:
    client = current_client(router, server_key=True)
    config = _stored(client.client_id, existing_id(profile_name, f"profile {profile_name[:64]!r}"))
    if config is None:
        raise _not_found(profile_name)
    if version is not None and version != config.version:
        raise ConflictError(f"profile {profile_name!r} is at version {config.version}, not {version}")
    config.delete()
    return Response(status_code=204, content_type=None, body=None)
