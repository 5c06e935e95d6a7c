"""The one place the environment is read.

`Settings()` reads environment variables when it is constructed, never at import. The composition
point (`openbrain.aws.backend.get_backend`) constructs it once per process unless handed one; everything
else takes the settings (or the backend built from them) as an argument. Every variable is listed in
the README's "Configuration" table. Endpoints are not settings of ours: boto3 and PynamoDB resolve the
standard `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_<SERVICE>` variables themselves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_MEMORY_STORE = "~/.openbrain/memory-store.json"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True, frozen=True)

    backend: Literal["memory", "aws"] | None = Field(
        None,
        validation_alias=AliasChoices("backend", "OB_BACKEND"),
        description="memory (default outside Lambda) or aws (the only choice inside Lambda)",
    )
    region: str = Field(
        "us-east-1", validation_alias=AliasChoices("region", "OB_REGION", "AWS_REGION", "AWS_DEFAULT_REGION")
    )
    agent_config_table: str = Field(
        "openbrain-agent-configs", validation_alias=AliasChoices("agent_config_table", "OB_AGENT_CONFIG_TABLE")
    )
    chat_session_table: str = Field(
        "openbrain-chat-sessions", validation_alias=AliasChoices("chat_session_table", "OB_CHAT_SESSION_TABLE")
    )
    lead_table: str = Field("openbrain-leads", validation_alias=AliasChoices("lead_table", "OB_LEAD_TABLE"))
    idempotency_table: str = Field(
        "openbrain-idempotency", validation_alias=AliasChoices("idempotency_table", "OB_IDEMPOTENCY_TABLE"),
        description="the table of POST /chat's Idempotency-Key records (Powertools idempotency)",
    )
    client_table: str = Field(
        "openbrain-clients", validation_alias=AliasChoices("client_table", "OB_CLIENT_TABLE")
    )
    connection_table: str = Field(
        "openbrain-connections", validation_alias=AliasChoices("connection_table", "OB_CONNECTION_TABLE"),
        description="the WebSocket connections (api/websocket.py): who each is, its ack, its turn, its session",
    )
    limits_table: str = Field(
        "openbrain-limits", validation_alias=AliasChoices("limits_table", "OB_LIMITS_TABLE"),
        description="the counters of the clients' rate limits and quotas (services/limits.py)",
    )
    event_bus_name: str = Field(
        "openbrain-events", validation_alias=AliasChoices("event_bus_name", "OB_EVENT_BUS")
    )
    queue_prefix: str = Field("openbrain", validation_alias=AliasChoices("queue_prefix", "OB_QUEUE_PREFIX"))
    schedule_group: str = Field(
        "openbrain-schedules", pattern=r"^[0-9A-Za-z_.-]{1,64}$",
        validation_alias=AliasChoices("schedule_group", "OB_SCHEDULE_GROUP"),
        description="the EventBridge Scheduler schedule group scheduled messages are created in (aws backend)",
    )
    scheduler_role_arn: str | None = Field(
        None, validation_alias=AliasChoices("scheduler_role_arn", "OB_SCHEDULER_ROLE_ARN"),
        description="the IAM role EventBridge Scheduler assumes to invoke the delivery function (aws backend)",
    )
    schedule_target_arn: str | None = Field(
        None, validation_alias=AliasChoices("schedule_target_arn", "OB_SCHEDULE_TARGET_ARN"),
        description="the ARN of the function that delivers scheduled messages (ScheduledDeliveryFunction)",
    )
    schedule_dlq_arn: str | None = Field(
        None, validation_alias=AliasChoices("schedule_dlq_arn", "OB_SCHEDULE_DLQ_ARN"),
        description="the SQS queue EventBridge Scheduler sends a schedule's event to when it cannot invoke the "
                    "function; empty: none",
    )
    lambda_function_name: str | None = Field(
        None, validation_alias=AliasChoices("lambda_function_name", "AWS_LAMBDA_FUNCTION_NAME")
    )
    openai_api_key: SecretStr | None = Field(
        None, validation_alias=AliasChoices("openai_api_key", "OPENAI_API_KEY")
    )
    openai_api_key_ref: str | None = Field(
        None, validation_alias=AliasChoices("openai_api_key_ref", "OB_OPENAI_API_KEY_REF"),
        description="where the OpenAI key lives (ssm:/name or secretsmanager:<name-or-arn>); OPENAI_API_KEY wins",
    )
    openai_base_url: str | None = Field(
        None, validation_alias=AliasChoices("openai_base_url", "OPENAI_BASE_URL")
    )
    session_ttl_days: int = Field(
        30, ge=1, le=3650, validation_alias=AliasChoices("session_ttl_days", "OB_SESSION_TTL_DAYS")
    )
    max_message_chars: int = Field(
        8000, ge=1, le=100_000, validation_alias=AliasChoices("max_message_chars", "OB_MAX_MESSAGE_CHARS")
    )
    webhook_timeout_seconds: float = Field(
        5.0, gt=0, le=60, validation_alias=AliasChoices("webhook_timeout_seconds", "OB_WEBHOOK_TIMEOUT_SECONDS"),
        description="how long a target waits for a client's webhook to answer",
    )
    webhook_secrets_path: str = Field(
        "/openbrain/dev/webhooks", pattern=r"^(/[A-Za-z0-9_.-]+)+$",
        validation_alias=AliasChoices("webhook_secrets_path", "OB_WEBHOOK_SECRETS_PATH"),
        description="the SSM path under which `ob-admin` stores the webhook signing secrets it makes "
                    "(template.yaml lets the targets read /<SecretsPrefix>/<Stage>/webhooks/*)",
    )
    identity_secrets_path: str = Field(
        "/openbrain/dev/identity", pattern=r"^(/[A-Za-z0-9_.-]+)+$",
        validation_alias=AliasChoices("identity_secrets_path", "OB_IDENTITY_SECRETS_PATH"),
        description="the SSM path under which `ob-admin` stores the clients' end-user identity secrets "
                    "(template.yaml lets the chat functions read /<SecretsPrefix>/<Stage>/identity/*)",
    )
    max_body_bytes: int = Field(
        65_536, ge=1_024, le=10_485_760, validation_alias=AliasChoices("max_body_bytes", "OB_MAX_BODY_BYTES"),
        description="largest request body the HTTPS chat API accepts (bytes); larger is 413",
    )
    ws_ack_seconds: float = Field(
        10.0, gt=0, le=3_600, validation_alias=AliasChoices("ws_ack_seconds", "OB_WS_ACK_SECONDS"),
        description="a WebSocket client must send {\"action\": \"ack\"} within this many seconds of connecting",
    )
    ws_idle_seconds: float = Field(
        600.0, gt=0, le=7_200, validation_alias=AliasChoices("ws_idle_seconds", "OB_WS_IDLE_SECONDS"),
        description="ob-serve closes a WebSocket with no frame either way for this long (API Gateway: 10 minutes)",
    )
    memory_store: Path | None = Field(
        Path(DEFAULT_MEMORY_STORE),
        validation_alias=AliasChoices("memory_store", "OB_MEMORY_STORE"),
        description="file the memory backend keeps its tables in between processes; empty or 'none' disables",
    )
    memory_store_idle_seconds: float = Field(
        300.0, gt=0, le=86_400,
        validation_alias=AliasChoices("memory_store_idle_seconds", "OB_MEMORY_STORE_IDLE_SECONDS"),
        description="the embedded store's process stops after this long with no request and no process attached",
    )
    tuner_user: str = Field(
        "operator", min_length=1, validation_alias=AliasChoices("tuner_user", "OB_TUNER_USER"),
        description="ob-tuner's login name when it asks for a password",
    )
    tuner_password: SecretStr | None = Field(
        None, validation_alias=AliasChoices("tuner_password", "OB_TUNER_PASSWORD"),
        description="ob-tuner's password: required when it listens on anything but loopback",
    )

    debug: bool = Field(False, validation_alias=AliasChoices("debug", "OB_DEBUG"),
                        description="CLIs print tracebacks of unexpected errors")

    @field_validator("backend", "openai_api_key", "openai_api_key_ref", "openai_base_url", "tuner_password",
                     "scheduler_role_arn", "schedule_target_arn", "schedule_dlq_arn", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return value or None

    @field_validator("memory_store", mode="before")
    @classmethod
    def _store_path(cls, value: object) -> object:
        if value is None or (isinstance(value, str) and value.strip().lower() in {"", "none", "off"}):
            return None
        return Path(str(value)).expanduser()

    @property
    def in_lambda(self) -> bool:
        return bool(self.lambda_function_name)

    @property
    def resolved_backend(self) -> Literal["memory", "aws"]:
        """The backend this process uses: the explicit choice, else aws in Lambda and memory elsewhere."""
        if self.backend:
            return self.backend
        return "aws" if self.in_lambda else "memory"

    def table_names(self) -> dict[str, str]:
        return {
            "AgentConfig": self.agent_config_table,
            "ChatSession": self.chat_session_table,
            "Lead": self.lead_table,
            "Client": self.client_table,
            "Connection": self.connection_table,
            "RateCounter": self.limits_table,
        }


def load_settings() -> Settings:
    """`Settings()` from the environment; a bad value is a `ConfigurationError` naming the variable."""
    from openbrain.core.errors import ConfigurationError

    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else ""
        alias = Settings.model_fields[field].validation_alias if field in Settings.model_fields else None
        name = alias.choices[1] if isinstance(alias, AliasChoices) else field or "setting"
        raise ConfigurationError(f"invalid {name}: {first['msg']}") from exc
