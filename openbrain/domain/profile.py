"""An agent profile: the ONE declaration of its fields, defaults, bounds and spellings.

`AgentProfile` (with its `MemoryPolicy`) is what the API accepts and answers, what the OpenAPI document
shows (bounds included), what YAML import/export, the tuner's form and a session's config snapshot carry,
and what the PynamoDB model (`openbrain.storage.orm.agent_config.AgentConfig`) maps to and from.

Names are snake_case; camelCase is accepted too (`systemMessage`, `maxIterations`, ..., and `iceBreaker`).
Numbers are numbers: a bool, text, NaN or infinity is refused, and whole-number fields take whole numbers
(5.0 is 5). `invalid_input` turns pydantic's `ValidationError` into an `InvalidInputError` whose message
names the field and the rule.

The tool implementations live in `openbrain.conversation.tools.registry`, which holds exactly `TOOL_NAMES`
(a test keeps the two in step), so validating a profile needs no agent runtime.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Self
from zoneinfo import available_timezones

from annotated_types import Ge, Le
from pydantic import (
    AliasChoices,
    AliasGenerator,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import ErrorDetails, PydanticCustomError

from openbrain.core.clock import is_time_zone
from openbrain.core.errors import InvalidInputError
from openbrain.domain.model_spec import (
    BASE_URL_PATTERN,
    CREDENTIALS_PATTERN,
    MAX_BASE_URL_CHARS,
    check_base_url,
    check_connection,
    check_credentials,
    connection_rules,
    parse_model_spec,
    spec_pattern,
)

TOOL_NAMES = ("get_current_time", "convert_to_from_utc", "calculator", "capture_lead", "end_conversation",
              "schedule_message", "list_schedules", "cancel_schedule")
DEFAULT_CLIENT_ID = "public"
DEFAULT_PROFILE = "default"
DEFAULT_MODEL = "openai:gpt-4o-mini"
DEFAULT_TOOLS = TOOL_NAMES
DEFAULT_SYSTEM_MESSAGE = (
    "You are a friendly, concise assistant. Answer questions directly. When someone wants to be "
    "contacted, collect their name and an email address or phone number and save them with the "
    "capture_lead tool. When they say goodbye, call end_conversation."
)
DEFAULT_ICEBREAKER = "Hi! I'm your OpenBrain assistant. How can I help you today?"
MAX_TEXT_CHARS = 20_000  # system message and icebreaker

PROFILE_ERROR = "invalid_profile"
"""The pydantic error type of the schema's own rules: their message is a whole sentence naming the field."""


def _invalid(message: str) -> PydanticCustomError:
    return PydanticCustomError(PROFILE_ERROR, "{message}", {"message": message})


def _snake_or_camel(name: str) -> AliasChoices:
    return AliasChoices(name, to_camel(name))


class _Schema(BaseModel):
    """What the profile's models share: strict types, unknown fields refused, snake_case or camelCase in,
    snake_case out, and numbers checked against their `Field` bounds with messages naming the rule."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        populate_by_name=True,
        alias_generator=AliasGenerator(validation_alias=_snake_or_camel),
        revalidate_instances="always",
    )
    _path: ClassVar[str] = ""  # how messages name this model's fields: "" or "memory."

    @classmethod
    def bounds(cls, name: str) -> tuple[int, int]:
        """The inclusive (low, high) bounds of number field `name`, as its `Field` declares them."""
        metadata = cls.model_fields[name].metadata
        low = next(item.ge for item in metadata if isinstance(item, Ge))
        high = next(item.le for item in metadata if isinstance(item, Le))
        return low, high  # type: ignore[return-value]

    @classmethod
    def field_name(cls, key: str) -> str:
        """The field a key names in any accepted spelling (`iceBreaker` -> `icebreaker`); unknown keys as they are."""
        for name, field in cls.model_fields.items():
            if isinstance(field.validation_alias, AliasChoices) and key in field.validation_alias.choices:
                return name
        return key

    @field_validator("*", mode="before")
    @classmethod
    def _number(cls, value: Any, info: ValidationInfo) -> Any:
        field = cls.model_fields[str(info.field_name)]
        if field.annotation not in (int, float):
            return value
        name, (low, high) = cls._path + str(info.field_name), cls.bounds(str(info.field_name))
        whole = field.annotation is int
        if (isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value)
                or not low <= value <= high):
            kind = " (a whole number)" if whole else ""
            raise _invalid(f"{name} must be between {low} and {high}{kind}, got {value!r}")
        if whole and value != int(value):
            raise _invalid(f"{name} must be a whole number, got {value!r}")
        return int(value) if whole else float(value)


class MemoryPolicy(_Schema):
    """How much history the model sees and how much a session stores.

    - `window_messages`: the model sees at most this many of the latest messages (whole turns); at most
      `max_stored_messages` (a larger value is lowered to it).
    - `window_tokens`: ... and at most about this many tokens of them (0 = no token bound).
    - `max_stored_messages`: the session keeps at most this many messages; older turns are dropped.
    - `max_stored_bytes`: ... and its compressed memory stays under this many bytes, whatever the
      message sizes, so the item never reaches DynamoDB's 400 KB limit.
    """

    _path: ClassVar[str] = "memory."

    window_messages: int = Field(40, ge=1, le=1000)
    window_tokens: int = Field(8000, ge=0, le=1_000_000)
    max_stored_messages: int = Field(400, ge=2, le=10_000)
    max_stored_bytes: int = Field(200_000, ge=10_000, le=280_000)

    @model_validator(mode="after")
    def _window_within_store(self) -> Self:
        # The model cannot see more than is stored: a larger window is the whole store (not an error, so every
        # combination of in-bounds values is a valid policy, as the OpenAPI document says).
        self.window_messages = min(self.window_messages, self.max_stored_messages)
        return self


class AgentProfile(_Schema):
    """One named set of agent parameters: prompt, icebreaker, model, tools, limits and memory policy."""

    model_config = ConfigDict(json_schema_extra={"allOf": connection_rules()})  # `_connection_fits_model`

    system_message: str = Field(DEFAULT_SYSTEM_MESSAGE, max_length=MAX_TEXT_CHARS)
    icebreaker: str = Field(
        DEFAULT_ICEBREAKER, max_length=MAX_TEXT_CHARS,
        validation_alias=AliasChoices("icebreaker", "iceBreaker", "ice_breaker"),
    )
    model: str = Field(DEFAULT_MODEL, description="'offline' or '<provider>:<model>' (e.g. 'openai:gpt-4o-mini', "
                                                 "'anthropic:claude-3-5-haiku-latest'); docs/models.md",
                       json_schema_extra={"pattern": spec_pattern()})
    temperature: float = Field(0.7, ge=0, le=2, description="rounded to 6 decimal places")
    tools: list[str] = Field(
        default_factory=lambda: list(DEFAULT_TOOLS),
        json_schema_extra={"items": {"type": "string", "enum": list(TOOL_NAMES)}},
    )
    max_iterations: int = Field(5, ge=1, le=50, description="model calls per turn before the agent stops")
    max_execution_time: float = Field(
        30.0, ge=1, le=900, description="seconds per turn; API Gateway gives up at 29 s, Lambda at 15 min"
    )
    base_url: str | None = Field(
        None, description="the model server's URL, instead of the provider's (https to a host name, or http(s) to "
                          "localhost or a loopback/private IPv4 address); it is sent only this profile's own "
                          "credentials",
        json_schema_extra={"pattern": BASE_URL_PATTERN, "maxLength": MAX_BASE_URL_CHARS},
    )
    credentials: str | None = Field(
        None, description="where the model's API key lives: env:OB_MODEL_KEY_<NAME>, "
                          "ssm:/openbrain/clients/<client_id>/<name> or "
                          "secretsmanager:openbrain/clients/<client_id>/<name>",
        json_schema_extra={"pattern": CREDENTIALS_PATTERN},
    )
    timezone: str = Field(
        "UTC", description="the IANA time zone (e.g. 'Europe/London') the session's scheduled messages are read in "
                           "when its context names none (docs/scheduling.md)",
        json_schema_extra=lambda schema: schema.update(enum=list[JsonValue](sorted(available_timezones()))),
    )
    memory: MemoryPolicy = Field(default_factory=MemoryPolicy)

    @field_validator("timezone")
    @classmethod
    def _iana_zone(cls, value: str) -> str:
        """An IANA zone name (ZoneInfo reads it from tzdata; the OpenAPI document lists them all, built only when
        it is: listing them takes ~20 ms)."""
        if not is_time_zone(value):
            raise _invalid(f"timezone must be an IANA time zone such as Europe/London, not {value[:64]!r}")
        return value

    @field_validator("system_message", "icebreaker", mode="before")
    @classmethod
    def _text(cls, value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, str) or len(value) > MAX_TEXT_CHARS:
            raise _invalid(f"{info.field_name} must be text of at most {MAX_TEXT_CHARS} characters")
        return value

    @field_validator("temperature")
    @classmethod
    def _six_places(cls, value: float) -> float:
        """DynamoDB stores numbers of magnitude 1e-130 and up: 1e-200 is 0 for a sampler and for the table."""
        return round(value, 6)

    @field_validator("model", mode="before")
    @classmethod
    def _model_spec(cls, value: Any) -> Any:
        if not isinstance(value, str):
            raise _invalid("model must be a model spec string such as 'offline' or 'openai:gpt-4o-mini'")
        try:
            parse_model_spec(value)
        except InvalidInputError as exc:
            raise _invalid(exc.message) from exc
        return value

    @field_validator("base_url", "credentials", mode="before")
    @classmethod
    def _connection(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None:
            return None
        if not isinstance(value, str):
            raise _invalid(f"{info.field_name} must be text")
        try:
            return check_base_url(value) if info.field_name == "base_url" else check_credentials(value)
        except InvalidInputError as exc:
            raise _invalid(exc.message) from exc

    @model_validator(mode="after")
    def _connection_fits_model(self) -> Self:
        try:
            check_connection(parse_model_spec(self.model), self.base_url, self.credentials)
        except InvalidInputError as exc:
            raise _invalid(exc.message) from exc
        return self

    @field_validator("tools", mode="before")
    @classmethod
    def _known_tools(cls, value: Any) -> Any:
        if not isinstance(value, list) or not all(isinstance(name, str) for name in value):
            raise _invalid("tools must be a list of tool names")
        unknown = [name for name in value if name not in TOOL_NAMES]
        if unknown:
            raise _invalid(f"unknown tool(s) {', '.join(unknown)}; known tools: {', '.join(sorted(TOOL_NAMES))}")
        return value

    @field_validator("memory", mode="before")
    @classmethod
    def _memory_mapping(cls, value: Any) -> Any:
        if not isinstance(value, dict | MemoryPolicy):
            raise _invalid("memory must be a mapping of memory policy fields")
        return value

    @classmethod
    def normalise(cls, values: dict[str, Any]) -> dict[str, Any]:
        """`values` (e.g. some overrides) with every key, and every memory policy key, spelled as its field."""
        named = {cls.field_name(key): value for key, value in values.items()}
        if isinstance(named.get("memory"), dict):
            named["memory"] = {MemoryPolicy.field_name(key): value for key, value in named["memory"].items()}
        return named

    @classmethod
    def parse(cls, values: Any, where: str = "") -> AgentProfile:
        """Validate `values`; `InvalidInputError` (its message prefixed by `where`) names the first bad field."""
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise invalid_input(exc, where) from exc


CONFIG_FIELDS = tuple(AgentProfile.model_fields)
"""A profile's fields, in declaration order (what overrides, YAML documents and the tuner may set)."""


def describe(error: ErrorDetails) -> str:
    """One pydantic error as a sentence that names the field and the rule."""
    if error["type"] == PROFILE_ERROR:
        return error["msg"]
    *parent, leaf = error["loc"] or ("",)
    if error["type"] == "extra_forbidden":
        model: type[BaseModel] = MemoryPolicy if parent else AgentProfile
        return (f"unknown {'.'.join(map(str, parent)) + ' ' if parent else ''}field {leaf!r}; "
                f"allowed: {', '.join(model.model_fields)}")
    where = ".".join(str(part) for part in error["loc"])
    return f"{where}: {error['msg']}" if where else error["msg"]


def invalid_input(exc: ValidationError, where: str = "") -> InvalidInputError:
    """Our error for the first problem pydantic found, its message prefixed by `where`."""
    return InvalidInputError(where + describe(exc.errors()[0]))
