"""The library's errors. No HTTP here: adapters (API, CLIs) map them at the boundary.

Every error has a stable machine-readable ``code`` and a message that is safe to show a user
(no stack traces, no secrets, no raw AWS responses).
"""

from __future__ import annotations


class OpenBrainError(Exception):
    """Base class of every error the library raises on purpose."""

    code = "openbrain_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFoundError(OpenBrainError):
    """The item does not exist (or belongs to another client, or has expired)."""

    code = "not_found"


class ConflictError(OpenBrainError):
    """A concurrent update got there first, or the item is in a state that forbids the change."""

    code = "conflict"


class SessionEndedError(ConflictError):
    """The conversation was ended (by the end_conversation tool); start a new one."""

    code = "session_ended"


class RequestInProgressError(ConflictError):
    """A request with the same idempotency key is still running."""

    code = "request_in_progress"


class ScheduleLimitError(ConflictError):
    """A scheduled message over the session's or the client's limit of waiting ones (cancel one first)."""

    code = "schedule_limit"


class InvalidInputError(OpenBrainError):
    """The caller sent something malformed or out of range."""

    code = "invalid_input"


class ItemTooLargeError(InvalidInputError):
    """What was to be stored is larger than DynamoDB's 400 KB item limit."""

    code = "item_too_large"


class IdempotencyKeyReusedError(InvalidInputError):
    """An idempotency key sent again with a different request body."""

    code = "idempotency_key_reused"


class UnauthorizedError(OpenBrainError):
    """Missing or wrong credentials."""

    code = "unauthorized"


class ForbiddenError(OpenBrainError):
    """Valid credentials, but not for this client's data."""

    code = "forbidden"


class RateLimitedError(OpenBrainError):
    """Over one of the client's rate limits or quotas (services/limits.py): nothing ran; retry after
    `retry_after` seconds."""

    code = "rate_limited"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class UpstreamError(OpenBrainError):
    """A dependency (model provider, AWS service) failed."""

    code = "upstream_error"


class DatabaseError(UpstreamError):
    """DynamoDB failed. Its message is for operators (it may name the endpoint and the settings behind it): the
    API answers a generic 502 and logs it."""


class UpstreamTimeoutError(UpstreamError):
    """A dependency did not answer in time."""

    code = "upstream_timeout"


class ConfigurationError(OpenBrainError):
    """The process is configured in a way that cannot work (missing key, wrong backend, ...)."""

    code = "configuration_error"


class StoredDataError(OpenBrainError):
    """Data read from a table is not in a format this version understands."""

    code = "stored_data_invalid"
