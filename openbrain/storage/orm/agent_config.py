"""AgentConfig: one named set of agent parameters (a "profile") of one client.

Keys: hash `client_id`, range `profile_name`. Defaults are `client_id="public"`,
`profile_name="default"`.
"""

from __future__ import annotations

import math
from typing import Any, Self

from pynamodb.attributes import ListAttribute, MapAttribute, NumberAttribute, UnicodeAttribute

from openbrain.core.errors import InvalidInputError, NotFoundError
from openbrain.core.ids import NAME_PATTERN
from openbrain.domain.model_spec import parse_model_spec
from openbrain.domain.profile import (
    CONFIG_FIELDS,
    DEFAULT_CLIENT_ID,
    DEFAULT_ICEBREAKER,
    DEFAULT_MODEL,
    DEFAULT_PROFILE,
    DEFAULT_SYSTEM_MESSAGE,
    DEFAULT_TOOLS,
    MAX_EXECUTION_TIME_RANGE,
    MAX_ITERATIONS_RANGE,
    MAX_TEXT_CHARS,
    TOOL_NAMES,
)
from openbrain.storage.orm.base import OpenBrainModel


class MemoryPolicy(MapAttribute[str, Any]):
    """How much history the model sees and how much a session stores.

    - `window_messages`: the model sees at most this many of the latest messages (whole turns).
    - `window_tokens`: ... and at most about this many tokens of them (0 = no token bound).
    - `max_stored_messages`: the session keeps at most this many messages; older turns are dropped.
    - `max_stored_bytes`: ... and its compressed memory stays under this many bytes, whatever the
      message sizes, so the item never reaches DynamoDB's 400 KB limit.
    """

    window_messages = NumberAttribute(default=40)
    window_tokens = NumberAttribute(default=8000)
    max_stored_messages = NumberAttribute(default=400)
    max_stored_bytes = NumberAttribute(default=200_000)

    LIMITS = {
        "window_messages": (1, 1000),
        "window_tokens": (0, 1_000_000),
        "max_stored_messages": (2, 10_000),
        "max_stored_bytes": (10_000, 280_000),
    }

    def validate_policy(self) -> None:
        for name, (low, high) in self.LIMITS.items():
            value = getattr(self, name)
            if (not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value)
                    or value != int(value)):
                raise InvalidInputError(f"memory.{name} must be a whole number")
            if not low <= value <= high:
                raise InvalidInputError(f"memory.{name} must be between {low} and {high}, got {value}")
        if self.window_messages > self.max_stored_messages:
            raise InvalidInputError("memory.window_messages cannot exceed memory.max_stored_messages")

    def to_dict(self) -> dict[str, int]:
        return {name: int(getattr(self, name)) for name in self.LIMITS}


class AgentConfig(OpenBrainModel):
    """A client's named agent profile: system message, icebreaker, model, tools and limits."""

    class Meta:
        table_name = "openbrain-agent-configs"
        region = "us-east-1"
        billing_mode = "PAY_PER_REQUEST"

    client_id = UnicodeAttribute(hash_key=True, default=DEFAULT_CLIENT_ID)
    profile_name = UnicodeAttribute(range_key=True, default=DEFAULT_PROFILE)
    system_message = UnicodeAttribute(default=DEFAULT_SYSTEM_MESSAGE)
    icebreaker = UnicodeAttribute(default=DEFAULT_ICEBREAKER)
    model = UnicodeAttribute(default=DEFAULT_MODEL)
    temperature = NumberAttribute(default=0.7)
    tools = ListAttribute(of=UnicodeAttribute, default=lambda: list(DEFAULT_TOOLS))
    max_iterations = NumberAttribute(default=5)
    max_execution_time = NumberAttribute(default=30)
    memory = MemoryPolicy(default=MemoryPolicy)

    def validate(self) -> Self:
        """Check every field; raises `InvalidInputError` naming the first bad one."""
        if not self.client_id or not self.profile_name:
            raise InvalidInputError("client_id and profile_name must not be empty")
        if not isinstance(self.profile_name, str) or not NAME_PATTERN.fullmatch(self.profile_name):
            raise InvalidInputError(
                "profile_name must be 1-64 letters, digits, '-' or '_', got " + repr(self.profile_name)
            )
        for name in ("system_message", "icebreaker"):
            value = getattr(self, name)
            if not isinstance(value, str) or len(value) > MAX_TEXT_CHARS:
                raise InvalidInputError(f"{name} must be text of at most {MAX_TEXT_CHARS} characters")
        if not isinstance(self.model, str):
            raise InvalidInputError("model must be a model spec string such as 'offline' or 'openai:gpt-4o-mini'")
        parse_model_spec(self.model)
        temperature = self.temperature
        if not isinstance(temperature, int | float) or isinstance(temperature, bool) or not 0 <= temperature <= 2:
            raise InvalidInputError(f"temperature must be between 0 and 2, got {self.temperature!r}")
        if not isinstance(self.tools, list) or not all(isinstance(name, str) for name in self.tools):
            raise InvalidInputError("tools must be a list of tool names")
        unknown = [str(name) for name in self.tools if name not in TOOL_NAMES]
        if unknown:
            raise InvalidInputError(
                f"unknown tool(s) {', '.join(unknown)}; known tools: {', '.join(sorted(TOOL_NAMES))}"
            )
        for name, (low, high), whole in (
            ("max_iterations", MAX_ITERATIONS_RANGE, True),
            ("max_execution_time", MAX_EXECUTION_TIME_RANGE, False),
        ):
            value = getattr(self, name)
            if (not isinstance(value, int | float) or isinstance(value, bool) or not low <= value <= high
                    or (whole and value != int(value))):
                kind = " (a whole number)" if whole else ""
                raise InvalidInputError(f"{name} must be between {low} and {high}{kind}, got {value!r}")
        self.memory.validate_policy()
        return self

    def save(self, condition: Any = None, *, add_version_condition: bool = True) -> dict[str, Any]:
        self.validate()
        return super().save(condition, add_version_condition=add_version_condition)

    def to_snapshot(self) -> dict[str, Any]:
        """The fields a chat session needs, as plain JSON (stored on the session)."""
        return {
            "client_id": self.client_id,
            "profile_name": self.profile_name,
            "system_message": self.system_message,
            "icebreaker": self.icebreaker,
            "model": self.model,
            "temperature": float(self.temperature),
            "tools": list(self.tools or []),
            "max_iterations": int(self.max_iterations),
            "max_execution_time": float(self.max_execution_time),
            "memory": self.memory.to_dict(),
            "version": self.version,
        }

    @classmethod
    def from_snapshot(cls, snapshot: dict[str, Any]) -> AgentConfig:
        """Rebuild an (unsaved) AgentConfig from `to_snapshot()` output."""
        fields = {name: snapshot[name] for name in CONFIG_FIELDS if name in snapshot}
        fields["memory"] = MemoryPolicy(**fields.get("memory", {}))
        return cls(snapshot["client_id"], snapshot["profile_name"], **fields)

    def with_overrides(self, overrides: dict[str, Any]) -> AgentConfig:
        """A validated copy with some fields replaced (names must be in `CONFIG_FIELDS`)."""
        unknown = sorted(set(overrides) - set(CONFIG_FIELDS))
        if unknown:
            raise InvalidInputError(f"cannot override {', '.join(unknown)}; allowed: {', '.join(CONFIG_FIELDS)}")
        snapshot = self.to_snapshot()
        for name, value in overrides.items():
            if name == "memory":
                if not isinstance(value, dict):
                    raise InvalidInputError("memory must be an object of memory policy fields")
                unknown_policy = sorted(set(value) - set(MemoryPolicy.LIMITS))
                if unknown_policy:
                    raise InvalidInputError(
                        f"invalid agent config override: unknown memory policy field(s) {', '.join(unknown_policy)}"
                    )
                snapshot["memory"] = {**snapshot["memory"], **value}
            else:
                snapshot[name] = value
        try:
            copy = AgentConfig.from_snapshot(snapshot)
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(f"invalid agent config override: {exc}") from exc
        return copy.validate()

    @classmethod
    def get_or_default(cls, client_id: str, profile_name: str = DEFAULT_PROFILE) -> AgentConfig:
        """The stored profile; for the `default` profile, the built-in defaults when none is stored."""
        try:
            return cls.get(client_id, profile_name)
        except NotFoundError as exc:
            if profile_name != DEFAULT_PROFILE:
                raise NotFoundError(f"profile {profile_name!r} not found for client {client_id!r}") from exc
            return cls(client_id, DEFAULT_PROFILE)
