"""AgentConfig: one named set of agent parameters (a "profile") of one client, as a table item.

Keys: hash `client_id`, range `profile_name`. Defaults are `client_id="public"`,
`profile_name="default"`. The fields, their defaults and their rules are declared once, by
`openbrain.domain.profile.AgentProfile`; this model stores them (one attribute per field, the memory
policy as a map of numbers) and maps to and from the schema in `profile()` and `from_profile()`.
"""

from __future__ import annotations

import json
from typing import Any, Self

from pydantic import ValidationError
from pynamodb.attributes import Attribute, ListAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.constants import MAP, NUMBER

from openbrain.core.errors import InvalidInputError, NotFoundError
from openbrain.core.ids import NAME_PATTERN
from openbrain.domain.model_spec import check_credentials_owner
from openbrain.domain.profile import (
    CONFIG_FIELDS,
    DEFAULT_CLIENT_ID,
    DEFAULT_PROFILE,
    PROFILE_ERROR,
    AgentProfile,
    MemoryPolicy,
    invalid_input,
)
from openbrain.storage.orm.base import OpenBrainModel

_DEFAULTS = AgentProfile()


def validate_profile_name(name: Any) -> str:
    """`name` if it can be a profile name (1-64 letters, digits, '-' or '_'); else `InvalidInputError`."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise InvalidInputError("profile_name must be 1-64 letters, digits, '-' or '_', got " + repr(name))
    return name


class MemoryPolicyAttribute(Attribute[MemoryPolicy]):
    """A profile's `MemoryPolicy`, stored as the map of numbers it has always been
    (`{"window_messages": {"N": "40"}, ...}`)."""

    attr_type = MAP

    def serialize(self, value: MemoryPolicy) -> dict[str, dict[str, str]]:
        return {name: {NUMBER: json.dumps(number)} for name, number in value.model_dump().items()}

    def deserialize(self, value: dict[str, dict[str, str]]) -> MemoryPolicy:
        # loaded unchecked, as every attribute is; `AgentConfig.profile()` checks it
        return MemoryPolicy.model_construct(**{name: json.loads(item[NUMBER]) for name, item in value.items()})


class AgentConfig(OpenBrainModel):
    """A client's named agent profile: system message, icebreaker, model, tools and limits."""

    class Meta:
        table_name = "openbrain-agent-configs"
        region = "us-east-1"
        billing_mode = "PAY_PER_REQUEST"

    client_id = UnicodeAttribute(hash_key=True, default=DEFAULT_CLIENT_ID)
    profile_name = UnicodeAttribute(range_key=True, default=DEFAULT_PROFILE)
    system_message = UnicodeAttribute(default=_DEFAULTS.system_message)
    icebreaker = UnicodeAttribute(default=_DEFAULTS.icebreaker)
    model = UnicodeAttribute(default=_DEFAULTS.model)
    temperature = NumberAttribute(default=_DEFAULTS.temperature)
    tools = ListAttribute(of=UnicodeAttribute, default=lambda: list(_DEFAULTS.tools))
    max_iterations = NumberAttribute(default=_DEFAULTS.max_iterations)
    max_execution_time = NumberAttribute(default=_DEFAULTS.max_execution_time)
    base_url = UnicodeAttribute(null=True)
    credentials = UnicodeAttribute(null=True)  # a reference (docs/models.md), never a key
    timezone = UnicodeAttribute(default=_DEFAULTS.timezone)
    memory = MemoryPolicyAttribute(default=MemoryPolicy)

    @classmethod
    def from_profile(cls, client_id: str, profile_name: str, profile: AgentProfile) -> AgentConfig:
        """An (unsaved) item holding `profile`."""
        config = cls(client_id, profile_name)
        config.set_profile(profile)
        return config

    def profile(self) -> AgentProfile:
        """This item's fields as the schema's profile; `InvalidInputError` names the first bad one."""
        return AgentProfile.parse({name: getattr(self, name) for name in CONFIG_FIELDS})

    def set_profile(self, profile: AgentProfile) -> None:
        """Replace every profile field of this item (keys, version and timestamps stay)."""
        copy = profile.model_copy(deep=True)
        for name in CONFIG_FIELDS:
            setattr(self, name, getattr(copy, name))

    def validate(self) -> Self:
        """Check the keys and every field (keeping the checked values, e.g. 5.0 as 5); raises
        `InvalidInputError` naming the first bad one."""
        if not self.client_id or not self.profile_name:
            raise InvalidInputError("client_id and profile_name must not be empty")
        validate_profile_name(self.profile_name)
        self.set_profile(self.profile())
        check_credentials_owner(self.credentials, self.client_id)
        return self

    def save(self, condition: Any = None, *, add_version_condition: bool = True) -> dict[str, Any]:
        self.validate()
        return super().save(condition, add_version_condition=add_version_condition)

    def to_snapshot(self) -> dict[str, Any]:
        """The fields a chat session needs, as plain JSON (stored on the session)."""
        return {
            "client_id": self.client_id,
            "profile_name": self.profile_name,
            **self.profile().model_dump(),
            "version": self.version,
        }

    @classmethod
    def from_snapshot(cls, snapshot: dict[str, Any]) -> AgentConfig:
        """Rebuild an (unsaved) AgentConfig from `to_snapshot()` output."""
        profile = AgentProfile.parse({name: snapshot[name] for name in CONFIG_FIELDS if name in snapshot})
        return cls.from_profile(snapshot["client_id"], snapshot["profile_name"], profile)

    def with_overrides(self, overrides: dict[str, Any]) -> AgentConfig:
        """A validated copy with some fields replaced (names must be in `CONFIG_FIELDS`; a `memory`
        override is merged into the memory policy)."""
        unknown = sorted(set(overrides) - set(CONFIG_FIELDS))
        if unknown:
            raise InvalidInputError(f"cannot override {', '.join(unknown)}; allowed: {', '.join(CONFIG_FIELDS)}")
        values = self.profile().model_dump()
        if isinstance(overrides.get("memory"), dict):
            overrides = {**overrides, "memory": {**values["memory"], **overrides["memory"]}}
        try:
            profile = AgentProfile.model_validate({**values, **overrides})
        except ValidationError as exc:  # a profile rule names its field; anything else says where it came from
            rule = exc.errors()[0]["type"] == PROFILE_ERROR
            raise invalid_input(exc, "" if rule else "invalid agent config override: ") from exc
        return AgentConfig.from_profile(self.client_id, self.profile_name, profile)

    @classmethod
    def get_or_default(cls, client_id: str, profile_name: str = DEFAULT_PROFILE) -> AgentConfig:
        """The stored profile; for the `default` profile, the built-in defaults when none is stored."""
        try:
            return cls.get(client_id, profile_name)
        except NotFoundError as exc:
            if profile_name != DEFAULT_PROFILE:
                raise NotFoundError(f"profile {profile_name!r} not found for client {client_id!r}") from exc
            return cls(client_id, DEFAULT_PROFILE)
